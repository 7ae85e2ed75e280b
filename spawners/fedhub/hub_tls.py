"""The TLS context a process the hub started (a service, a job's server) calls the hub's API
with: it checks the hub's certificate against the hub's CA and shows its own, as JupyterHub's
internal SSL asks. Read from JupyterHub's variables; None when internal SSL is off."""

from __future__ import annotations

import os
import ssl


def hub_ssl_context(environ=os.environ) -> ssl.SSLContext | None:
    keyfile, certfile = environ.get("JUPYTERHUB_SSL_KEYFILE"), environ.get("JUPYTERHUB_SSL_CERTFILE")
    cafile = environ.get("JUPYTERHUB_SSL_CLIENT_CA")
    if not (keyfile and certfile and cafile):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.load_cert_chain(certfile, keyfile)
    return context
