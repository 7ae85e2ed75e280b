"""What every FedHub hub needs, applied by ``configure_hub(c)`` at the end of jupyterhub_config.py.

It reads the operator's settings from ``c`` (traitlets) and the federation file they name, and
adds nothing an operator would set: it validates the federation file (a bad file stops the hub
at start with the field's path and the fix), selects FedHub's spawner, keeps jobs running
across hub restarts, and runs the quota service with the scopes users and servers need.
"""

from __future__ import annotations

import sys

from ..federation import Federation, FederationError, load_federation
from ..quota.service import SERVICE_NAME, QuotaService


def configure_hub(c) -> Federation:
    path = c.FederatedSpawner.get("federation_file")
    if not path:
        sys.exit("FedHub cannot start: set c.FederatedSpawner.federation_file to the federation file's path")
    try:
        federation = load_federation(path)
    except FederationError as e:
        sys.exit(f"FedHub cannot start: {e}")

    c.JupyterHub.spawner_class = "fedhub"
    # Jobs at the centres keep running across hub restarts; the hub finds them from state.
    c.JupyterHub.cleanup_servers = False
    if any(centre.accounting for centre in federation.centres):
        add_quota_service(c, path)
    c.JupyterHub.log_format = "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s]%(end_color)s %(message)s"
    print(f"FedHub: {len(federation.centres)} centres from {path}: {', '.join(federation.centre_ids)}",
          file=sys.stderr)
    return federation


def add_quota_service(c, federation_file: str) -> None:
    """Run the quota service under the hub; users, their servers' tokens and the hub may call it."""
    port = c.QuotaService.get("port", QuotaService.port.default_value)
    max_age = c.QuotaService.get("max_age", QuotaService.max_age.default_value)
    c.JupyterHub.services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != SERVICE_NAME] + [{
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "fedhub.quota.service", f"--QuotaService.federation_file={federation_file}",
                    f"--QuotaService.max_age={max_age}", f"--QuotaService.port={port}"],
        "oauth_no_confirm": True,
        "display": False,
    }]
    c.FederatedSpawner.quota_service_url = f"http://127.0.0.1:{port}/services/{SERVICE_NAME}/"
    access = f"access:services!service={SERVICE_NAME}"
    c.JupyterHub.load_roles = [r for r in c.JupyterHub.get("load_roles", []) if r.get("name") != "user"] + [
        {"name": "user", "scopes": ["self", access]}]
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", access]


def register_admin_token(c, token: str, name: str = "fedhub-admin") -> None:
    """An API token with the admin role, for scripts driving the hub (the demo's FEDHUB_API_TOKEN)."""
    c.JupyterHub.services = list(c.JupyterHub.get("services", [])) + [{"name": name, "api_token": token}]
    c.JupyterHub.load_roles = list(c.JupyterHub.get("load_roles", [])) + [{"name": "admin", "services": [name]}]
