"""The hub's settings when it runs from FedHub's Helm chart (``helm/fedhub``).

The chart renders its values into ``settings.json`` and a site config that calls
``configure_from_chart``; secrets reach the hub only through its environment, from the chart's
Secret. What a pod cannot do is refused here with the value to change, as the chart's own checks
do, so a hand-edited ConfigMap fails as clearly as a bad ``helm install``.
"""

from __future__ import annotations

import json
import os
import sys

from ..federation import FederationError, load_federation
from .login import federation_login_settings

HUB_API_PORT = 8081  # the pod's hub-api port (the chart's Service and probes)
PROXY_API_URL = "https://127.0.0.1:8001"  # the proxy container, in the same pod (internal SSL)
PUBLIC_BIND_URL = "http://0.0.0.0:8000"  # the proxy container's public port


class ChartError(ValueError):
    """A value the chart was given cannot work; the message names the value and the fix."""


def configure_from_chart(c, settings_file: str, environ=os.environ) -> None:
    """Apply the chart's settings to ``c``; exit naming the value when one cannot work."""
    try:
        apply_settings(c, read_settings(settings_file), environ)
    except ChartError as e:
        sys.exit(f"FedHub cannot start: {e}")


def read_settings(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ChartError(f"the chart's settings ({path}) cannot be read: {e}") from None


def apply_settings(c, settings: dict, environ) -> None:
    federation_file = settings["federationFile"]
    refuse_local_routes(federation_file)
    c.FederatedSpawner.federation_file = federation_file
    c.FederatedSpawner.state_dir = settings["stateDir"]

    # The proxy is the pod's other container: the hub neither starts nor stops it.
    c.JupyterHub.bind_url = PUBLIC_BIND_URL
    if settings.get("publicUrl"):
        c.JupyterHub.public_url = settings["publicUrl"]
    # internal SSL: the hub's API is TLS, and asks every caller for a certificate of the hub's CA
    c.JupyterHub.hub_bind_url = f"https://0.0.0.0:{HUB_API_PORT}"
    c.JupyterHub.hub_connect_url = f"https://127.0.0.1:{HUB_API_PORT}"  # the services beside it
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = PROXY_API_URL  # its token: CONFIGPROXY_AUTH_TOKEN

    # The database: PostgreSQL from the Secret, else SQLite on the state volume (a trial).
    db_url = environ.get("FEDHUB_DB_URL", "")
    c.JupyterHub.db_url = db_url or f"sqlite:///{os.path.join(settings['stateDir'], 'jupyterhub.sqlite')}"
    for name in ("JPY_COOKIE_SECRET", "JUPYTERHUB_CRYPT_KEY", "CONFIGPROXY_AUTH_TOKEN"):
        if not environ.get(name):
            raise ChartError(f"{name} is not set: the hub's container takes it from the chart's Secret; "
                             "check that the Secret <release>-fedhub-hub exists")

    apply_login(c, settings, environ)
    if settings.get("adminUsers"):
        c.Authenticator.admin_users = set(settings["adminUsers"])
    if settings.get("classFile"):
        c.ClassService.class_file = settings["classFile"]
    for cls, traits in (settings.get("config") or {}).items():
        for name, value in traits.items():
            setattr(c[cls], name, value)


def apply_login(c, settings: dict, environ) -> None:
    oidc = (settings.get("auth") or {}).get("oidc") or {}
    if not oidc.get("clientId"):
        raise ChartError("auth.oidc.clientId is empty: register the hub with the federation's OpenID Connect "
                         "provider and give its client id, secret and endpoints in auth.oidc")
    secret = environ.get("FEDHUB_OIDC_CLIENT_SECRET", "")
    if not secret:
        raise ChartError("auth.oidc.clientSecret is missing: give the client secret the provider issued")
    public = (settings.get("publicUrl") or "").rstrip("/")
    if not public:
        raise ChartError("hub.publicUrl is empty: the login's callback is made from it")
    c.JupyterHub.authenticator_class = "fedhub-oidc"
    g = c.GenericOAuthenticator
    for name, value in federation_login_settings(
            client_id=oidc["clientId"], client_secret=secret, hub_url=public, authorize_url=oidc["authorizeUrl"],
            token_url=oidc["tokenUrl"], userdata_url=oidc["userdataUrl"], scope=oidc.get("scope") or [],
            username_claim=oidc.get("usernameClaim") or "sub",
            login_service=oidc.get("loginService") or "the federation's login",
            manage_groups=bool(oidc.get("manageGroups", True)), groups_key=oidc.get("groupsClaim")).items():
        setattr(g, name, value)
    g.allow_all = bool(oidc.get("allowAll", False))
    if oidc.get("allowedUsers"):
        g.allowed_users = set(oidc["allowedUsers"])
    if oidc.get("logoutRedirectUrl"):
        g.logout_redirect_url = oidc["logoutRedirectUrl"]


def refuse_local_routes(federation_file: str) -> None:
    """A pod has no Slurm and no centre's slurm.conf: every centre goes through its login node."""
    try:
        federation = load_federation(federation_file)
    except FederationError as e:
        raise ChartError(f"federation: {e}") from None
    for i, centre in enumerate(federation.centres):
        if centre.scheduler.kind != "ssh":
            raise ChartError(
                f"federation.centres[{i}] ({centre.id}).scheduler.type: {centre.scheduler.kind!r} cannot work in a "
                "pod: the hub's pod has no Slurm and no centre's slurm.conf. Reach the centre through its login "
                f"node (type: ssh, host, query_user) with its key in centreSecrets.{centre.id}")
