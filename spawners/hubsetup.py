"""Everything jupyterhub_config.py needs, so that file stays a few readable lines.

``configure(c, ...)`` validates the federation file first (a bad file stops the hub with the
field's path and the fix), then points JupyterHub at FedHub's spawner, the proxy and the
settings a batch-scheduled hub needs (servers outlive hub restarts).
"""

from __future__ import annotations

import os
import shutil
import sys

from .federation import FederationError, load_federation


def configure(c, federation_file: str, *, proxy_command: str | None = None) -> None:
    try:
        federation = load_federation(federation_file)
    except FederationError as e:
        sys.exit(f"FedHub cannot start: {e}")

    from .federated import FederatedSpawner

    c.JupyterHub.spawner_class = FederatedSpawner
    c.FederatedSpawner.federation_file = federation_file
    # Jobs at the centres keep running across hub restarts; the hub finds them from state.
    c.JupyterHub.cleanup_servers = False
    proxy = proxy_command or os.environ.get("FEDHUB_PROXY") or shutil.which("configurable-http-proxy")
    if proxy:
        c.ConfigurableHTTPProxy.command = [proxy]
    if any(centre.accounting for centre in federation.centres):
        add_quota_service(c, federation_file)
    c.JupyterHub.log_format = "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s]%(end_color)s %(message)s"
    print(f"FedHub: {len(federation.centres)} centres from {federation_file}: "
          f"{', '.join(federation.centre_ids)}", file=sys.stderr)


def add_quota_service(c, federation_file: str) -> None:
    """Run the quota service under the hub; users and their servers' tokens may call it."""
    from .quota_service import SERVICE_NAME

    port = int(os.environ.get("FEDHUB_QUOTA_PORT", "8082"))
    env = {"FEDHUB_FEDERATION": federation_file}
    for name in ("FEDHUB_QUOTA_MAX_AGE", "FEDHUB_SCHEDULER_PATH"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    c.JupyterHub.services.append({
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "spawners.quota_service"],
        "environment": env,
        "oauth_no_confirm": True,
        "display": False,
    })
    access = f"access:services!service={SERVICE_NAME}"
    c.JupyterHub.load_roles.append({"name": "user", "scopes": ["self", access]})
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", access]


def register_admin_token(c, token: str, name: str = "fedhub-admin") -> None:
    """An API token with the admin role, for scripts driving the hub (the demo's FEDHUB_API_TOKEN)."""
    c.JupyterHub.services.append({"name": name, "api_token": token})
    c.JupyterHub.load_roles.append({"name": "admin", "services": [name]})
