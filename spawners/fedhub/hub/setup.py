"""What every FedHub hub needs, applied by ``configure_hub(c)`` at the end of jupyterhub_config.py.

It reads the operator's settings from ``c`` (traitlets) and the federation file they name, and
adds nothing an operator would set: it validates the federation file (a bad file stops the hub
at start with the field's path and the fix), selects FedHub's spawner, keeps jobs running
across hub restarts, runs the quota service, and grants the scopes users and servers need
(the quota service's, and the kernel API's).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from .. import claims
from ..federation import Federation, FederationError, load_federation
from ..kernels import KERNEL_SCOPE
from .api.classes import CLASSES_SCOPE, TEACH_SCOPE
from .api.continues import CONTINUE_SCOPE
from .api.transfers import WORKSPACE_SCOPE
from .api.culling import CULL_SCOPE
from ..culling.decide import shortest_timeout
from ..classes.service import SERVICE_NAME as CLASS_SERVICE, ClassService
from ..quota.service import SERVICE_NAME, QuotaService
from ..slurm.sshmux import SocketDirError, use_state_dir
from .api import install_routes
from ..jobs.tls import forget_hub_certificate_without, hub_alt_names


def configure_hub(c) -> Federation:
    path = c.FederatedSpawner.get("federation_file")
    if not path:
        sys.exit("FedHub cannot start: set c.FederatedSpawner.federation_file to the federation file's path")
    try:
        federation = load_federation(path)
    except FederationError as e:
        sys.exit(f"FedHub cannot start: {e}")

    # the users' claims (logins at centres) are kept in FedHub's state directory
    state_dir = c.FederatedSpawner.get("state_dir") or "/var/lib/fedhub"
    claims.configure(state_dir)
    try:
        use_state_dir(state_dir)  # the ssh control sockets: in the state directory, 0700, the hub's own
    except (SocketDirError, OSError) as e:
        sys.exit(f"FedHub cannot start: {e}")
    c.JupyterHub.spawner_class = "fedhub"
    install_routes()  # FedHub's REST API (hub/api/), before JupyterHub builds its handlers
    add_internal_ssl(c, federation, state_dir)
    # Jobs at the centres keep running across hub restarts; the hub finds them from state.
    c.JupyterHub.cleanup_servers = False
    add_named_servers(c)
    add_kernel_scope(c)
    add_continue_scope(c)
    add_workspace_scope(c)
    add_class_scope(c)
    # a server reads its own record (the lab's "time left": hub/api/sessions.py), nothing more
    _grant(c, user=[], server=["read:servers!server"])
    # FedHub's additions to JupyterHub's pages (the home page's "time left"), extending them
    c.JupyterHub.template_paths = [str(Path(__file__).parent / "templates"), *c.JupyterHub.get("template_paths", [])]
    add_languages(c)
    if any(centre.accounting for centre in federation.centres):
        add_quota_service(c, path, state_dir)
    add_class_service(c, path, state_dir)
    add_culler_service(c, federation, path)
    c.JupyterHub.log_format = "%(color)s[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s]%(end_color)s %(message)s"
    print(f"FedHub: {len(federation.centres)} centres from {path}: {', '.join(federation.centre_ids)}",
          file=sys.stderr)
    return federation


def add_internal_ssl(c, federation: Federation, state_dir: str) -> None:
    """JupyterHub's internal SSL between the hub, the proxy, the notebook servers and the kernel
    launchers: each checks the other's certificate against the hub's CA (certipy's, kept in the
    state directory so running servers stay trusted across restarts). The hub's certificate names
    every address jobs reach it by (``hub_connect_url``, a tunnel centre's login node), else they
    refuse it. ``c.JupyterHub.internal_ssl = False`` turns it off, with a warning."""
    if c.JupyterHub.get("internal_ssl") is False:
        print("FedHub: WARNING: c.JupyterHub.internal_ssl is False: tokens and kernel keys cross the centres' "
              "networks in clear, and a user on a login node can pose as the hub", file=sys.stderr)
        return
    c.JupyterHub.internal_ssl = True
    proxy_api = c.ConfigurableHTTPProxy.get("api_url", "")
    if proxy_api.startswith("http:"):  # the proxy's API is TLS too (JupyterHub's default with internal SSL)
        c.ConfigurableHTTPProxy.api_url = "https:" + proxy_api[len("http:"):]
    location = c.JupyterHub.get("internal_certs_location") or os.path.join(state_dir, "internal-ssl")
    c.JupyterHub.internal_certs_location = location
    hosts = [urlparse(centre.hub_connect_url).hostname for centre in federation.centres if centre.hub_connect_url]
    hosts += [centre.network.login_node_address for centre in federation.centres if centre.network.tunnel]
    names = list(dict.fromkeys([*c.JupyterHub.get("trusted_alt_names", []), *hub_alt_names(hosts)]))
    c.JupyterHub.trusted_alt_names = names
    forget_hub_certificate_without(location, names)


def add_languages(c) -> None:
    """The hub's pages in the user's language (``i18n/``): Jinja's i18n extension on JupyterHub's
    own environment, so FedHub's templates and its extensions of JupyterHub's use ``_()``."""
    options = dict(c.JupyterHub.get("jinja_environment_options", {}))
    options["extensions"] = list(dict.fromkeys([*options.get("extensions", []), I18N_EXTENSION]))
    c.JupyterHub.jinja_environment_options = options


I18N_EXTENSION = "fedhub.i18n.jinja.FedHubI18n"


def add_quota_service(c, federation_file: str, state_dir: str = "") -> None:
    """Run the quota service under the hub; users, their servers' tokens and the hub may call it."""
    port = c.QuotaService.get("port", QuotaService.port.default_value)
    max_age = c.QuotaService.get("max_age", QuotaService.max_age.default_value)
    c.JupyterHub.services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != SERVICE_NAME] + [{
        "name": SERVICE_NAME,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "fedhub.quota.service", f"--QuotaService.federation_file={federation_file}",
                    f"--QuotaService.max_age={max_age}", f"--QuotaService.port={port}",
                    f"--QuotaService.state_dir={state_dir}"],
        "oauth_no_confirm": True,
        "display": False,
    }]
    c.FederatedSpawner.quota_service_url = f"http://127.0.0.1:{port}/services/{SERVICE_NAME}/"
    access = f"access:services!service={SERVICE_NAME}"
    _grant(c, user=[access], server=[access])


def add_class_service(c, federation_file: str, state_dir: str = "") -> None:
    """Run the class service (teachers' dashboard, bulk start) under the hub. Its own token may
    apply the class file and read allocations; everything a teacher does there uses the teacher's
    token, whose scopes (``oauth_client_allowed_scopes``, met by the class's role) JupyterHub checks."""
    port = c.ClassService.get("port", ClassService.port.default_value)
    class_file = c.ClassService.get("class_file", "")
    command = [sys.executable, "-m", "fedhub.classes.service", f"--ClassService.federation_file={federation_file}",
               f"--ClassService.port={port}", f"--ClassService.quota_url={c.FederatedSpawner.get('quota_service_url', '')}"]
    if class_file:
        command.append(f"--ClassService.class_file={class_file}")
    if state_dir:
        command.append(f"--ClassService.state_dir={state_dir}")
    for setting in ("reservation_interval", "materials_interval", "server_token_lifetime"):
        if c.ClassService.get(setting) is not None:
            command.append(f"--ClassService.{setting}={c.ClassService.get(setting)}")
    c.JupyterHub.services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != CLASS_SERVICE] + [{
        "name": CLASS_SERVICE,
        "url": f"http://127.0.0.1:{port}",
        "command": command,
        "oauth_no_confirm": True,
        "display": True,
        "oauth_client_allowed_scopes": ["list:users", "read:users", "read:servers", "servers", "list:groups",
                                        "read:groups", TEACH_SCOPE],
    }]
    c.JupyterHub.load_roles = [r for r in c.JupyterHub.get("load_roles", []) if r.get("name") != CLASS_SERVICE] + [{
        "name": CLASS_SERVICE, "services": [CLASS_SERVICE],
        "scopes": [CLASSES_SCOPE, "list:users", "read:users", "list:groups", "read:groups",
                   f"access:services!service={SERVICE_NAME}"]}]
    # No access:servers: a hand-out or collection sends each server a token of its own user's that
    # opens only that server for a minute (hub/api/classes.py ServerTokenHandler), because a
    # server is its user's and may record any token it receives.


def add_named_servers(c) -> None:
    """Several servers per user (JupyterHub's named servers), each its own Slurm job at its own
    centre, e.g. one at alpha and one at gamma; the default server is the one a class starts.
    An operator may turn them off (``c.JupyterHub.allow_named_servers = False``) or change the
    limit (``c.JupyterHub.named_server_limit_per_user``, 0 for none)."""
    if c.JupyterHub.get("allow_named_servers") is None:
        c.JupyterHub.allow_named_servers = True
    if c.JupyterHub.get("named_server_limit_per_user") is None:
        c.JupyterHub.named_server_limit_per_user = NAMED_SERVER_LIMIT


NAMED_SERVER_LIMIT = 4
CULLER = "fedhub-idle-culler"


def add_culler_service(c, federation: Federation, federation_file: str) -> None:
    """jupyterhub-idle-culler as a hub-managed service, with FedHub's arbiter (``culling/``),
    when any centre or partition sets an ``idle_timeout``. It checks at half the shortest
    timeout (at most every 5 minutes); its role may read servers and their state, stop them,
    and ask the hub to save a server's session first, nothing else."""
    shortest = shortest_timeout(federation)
    if not shortest:
        return
    culler_config = Path(__file__).parents[1] / "culling" / "culler_config.py"  # the culler loads it, not the hub
    every = max(5, min(300, shortest // 2))
    command = [sys.executable, "-m", "jupyterhub_idle_culler", f"--config={culler_config}",
               f"--timeout={shortest}", f"--cull-every={every}", "--cull-users=false", "--remove-named-servers=false"]
    if c.JupyterHub.get("internal_ssl"):
        command += ["--ssl-enabled=true", f"--internal-certs-location={c.JupyterHub.internal_certs_location}"]
    c.JupyterHub.services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != CULLER] + [{
        "name": CULLER, "command": command, "environment": {"FEDHUB_FEDERATION_FILE": federation_file},
        "display": False}]
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), CULL_SCOPE: {
        "description": "Have the hub save an idle server's session before the culler stops it."}}
    c.JupyterHub.load_roles = [r for r in c.JupyterHub.get("load_roles", []) if r.get("name") != CULLER] + [{
        "name": CULLER, "services": [CULLER],
        "scopes": ["list:users", "read:users:name", "read:users:activity", "read:servers", "delete:servers",
                   "admin:server_state", CULL_SCOPE]}]


def add_kernel_scope(c) -> None:
    """Kernels at centres (``kernels/api.py``): a server may manage its own, a user their own."""
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), KERNEL_SCOPE: {
        "description": "Start, follow and end kernels at the federation's centres for a server."}}
    _grant(c, user=[f"{KERNEL_SCOPE}!user"], server=[f"{KERNEL_SCOPE}!server"])


def add_continue_scope(c) -> None:
    """Continue at another centre (``hub/api/continues.py``): the lab's button asks the hub with
    the server's own token, which may continue that server and no other."""
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), CONTINUE_SCOPE: {
        "description": "Continue a running server at another centre, with its kernels and files."}}
    # a token never holds more than its owner: the user holds it for their own servers
    _grant(c, user=[f"{CONTINUE_SCOPE}!user"], server=[f"{CONTINUE_SCOPE}!server"])


def add_workspace_scope(c) -> None:
    """The workspace at every centre and transfers between them (``hub/api/transfers.py``): the
    lab's panel asks with the server's own token, for its own user's files only."""
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), WORKSPACE_SCOPE: {
        "description": "See the user's workspace at every centre and copy its files between centres."}}
    _grant(c, user=[f"{WORKSPACE_SCOPE}!user"], server=[f"{WORKSPACE_SCOPE}!user"])


def add_class_scope(c) -> None:
    """Classes (``classes/``): each class's teachers get ``custom:fedhub:teach!group=<class>``
    through the class's role, which the class API makes."""
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), TEACH_SCOPE: {
        "description": "Act as a teacher of a class (a group): its settings, bulk start and stop, materials."},
        CLASSES_SCOPE: {"description": "Create, change and remove any class, and name its teachers."}}


def _grant(c, *, user: list[str], server: list[str]) -> None:
    """Add scopes to the user role and to every server's token (beside JupyterHub's defaults)."""
    roles = list(c.JupyterHub.get("load_roles", []))
    role = next((r for r in roles if r.get("name") == "user"), None)
    if role is None:
        role = {"name": "user", "scopes": ["self"]}
        roles.append(role)
    role["scopes"] = list(dict.fromkeys([*role.get("scopes", []), *user]))
    c.JupyterHub.load_roles = roles
    current = c.Spawner.get("server_token_scopes", ["users:activity!user", "access:servers!server"])
    c.Spawner.server_token_scopes = list(dict.fromkeys([*current, *server]))


def register_admin_token(c, token: str, name: str = "fedhub-admin") -> None:
    """An API token with the admin role, for scripts driving the hub (the demo's FEDHUB_API_TOKEN)."""
    c.JupyterHub.services = list(c.JupyterHub.get("services", [])) + [{"name": name, "api_token": token}]
    c.JupyterHub.load_roles = list(c.JupyterHub.get("load_roles", [])) + [{"name": "admin", "services": [name]}]
