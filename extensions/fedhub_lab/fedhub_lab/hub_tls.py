"""How this server (and its kernels) speak to the hub: with JupyterHub's internal SSL, the hub
asks for the server's certificate and the server accepts only a hub whose certificate chains to
the hub's CA. JupyterHub names the files in ``JUPYTERHUB_SSL_*`` (FedHub's job script writes
them into a private directory on the node)."""

from __future__ import annotations

import os
import ssl

from . import runtime


def hub_ssl_context(env=os.environ) -> ssl.SSLContext | None:
    """A client context with the server's key and the hub's CA; None without internal SSL.

    Made once per process for the same files (the lab's quota handler asks on every request)."""
    key, cert = env.get("JUPYTERHUB_SSL_KEYFILE", ""), env.get("JUPYTERHUB_SSL_CERTFILE", "")
    if not key or not cert:
        return None
    files = (key, cert, env.get("JUPYTERHUB_SSL_CLIENT_CA") or None)
    contexts = runtime.current().hub_tls_contexts
    if files not in contexts:
        context = ssl.create_default_context(cafile=files[2])
        context.load_cert_chain(cert, key)
        contexts[files] = context
    return contexts[files]
