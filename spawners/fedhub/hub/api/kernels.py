"""The hub's kernel API: a notebook server asks for, follows and ends kernels at centres.

Every route acts for one user's one server, named in the path and the ``server`` query argument
(default: the default server), and needs the scope ``custom:fedhub:kernels`` for that server: a
server's own token has it for itself, a user for their own servers (``configure_hub`` grants
both). Another user's token gets 404, as JupyterHub answers for servers one may not see.

    GET    /hub/api/fedhub/users/{user}/kernel-centres      where a kernel may run, or why not,
                                                            and the option fields the form shows
                                                            (fedhub.request.OPTION_FIELDS)
                                                            (?suggest_from=C: and where a kernel
                                                            leaving C would start soonest)
    GET    /hub/api/fedhub/users/{user}/kernels             this server's kernels
    POST   /hub/api/fedhub/users/{user}/kernels             {centre, partition, project, cores,
                                                             memory, gpus, gpu_type, walltime, key,
                                                             curve_secretkey}
                                                            ("dry_run": true: only check them)
    GET    /hub/api/fedhub/users/{user}/kernels/{id}        status, Slurm's words, connection
                                                            (?status=S&wait=T: answer once the
                                                            status is not S, or after T <= 30 s)
    DELETE /hub/api/fedhub/users/{user}/kernels/{id}        end the kernel and its job
    POST   /hub/api/fedhub/users/{user}/kernels/{id}/restart   a new kernel in the same job

The launcher inside the kernel's job calls one more route, with its one-time token and the
protocol it speaks (header ``FedHub-Launcher-Protocol: 1``; another version is refused with 400,
saying which fedhub-lab to install):

    POST   /hub/api/fedhub/kernels/{id}/launcher            {"node", "ports"}: the kernel listens;
                                                            {"exited": code}: it ended (answer: action)
    GET    /hub/api/fedhub/kernels/{id}/launcher            "restart", "wait" or "exit"
    GET    /hub/api/fedhub/kernels/{id}/launcher/keys       the kernel's HMAC key and CurveZMQ
                                                            pair (until it reported its ports)

The kernel's channels are CurveZMQ: the server makes the pair (``zmq.curve_keypair``) and sends
its secret half here with the HMAC key, over the hub's TLS; the launcher fetches them over TLS,
so they are never in the job's script, argv or environment, and the relays carry only ciphertext.
"""

from __future__ import annotations

import json
import re

import zmq

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from jupyterhub.spawner import SpawnException
from tornado import web

from ...logins import NoLogin, login_at
from ...projects import projects_at
from ...quota.client import entry_for, used_up
from ...request import ALLOWED_OPTIONS, OptionError, default_resources, option_schema, parse_user_options
from ... import __version__
from ...kernels import KERNEL_SCOPE, LAUNCHER_PROTOCOL, PROTOCOL_HEADER
from ...kernels.server_kernels import KernelError, ServerKernels, kernels_by_id
from ...i18n import InRequestLanguage, _
from .auth import api_authenticated

SCOPE = KERNEL_SCOPE
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
SUGGESTION_REQUEST = {"cores": 1, "memory": "1G", "walltime": "01:00:00"}  # a typical kernel
MAX_WAIT = 30.0  # a long poll's longest wait, well under proxies' idle timeouts


class _ServerKernelsHandler(InRequestLanguage, APIHandler):
    """Resolves the user's server and checks the scope for it."""

    def server_kernels(self, user_name: str) -> tuple[object, ServerKernels]:
        server = self.get_argument("server", "")
        if not has_scope(f"{SCOPE}!server={user_name}/{server}", self.parsed_scopes, db=self.db):
            raise web.HTTPError(404, "No access to resources or resources not found")
        user = self.find_user(user_name)
        spawner = user.spawners.get(server) if user is not None else None
        if spawner is None or not hasattr(spawner, "kernels"):
            raise web.HTTPError(404, _("{user} has no FedHub server {server}").format(user=user_name, server=repr(server)))
        if not spawner.active or spawner.job is None:
            raise web.HTTPError(409, _("{user}'s server {server} is not running; start it first").format(
                user=user_name, server=repr(server)))
        return spawner, spawner.kernels

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, KernelError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": exc.status, "message": exc.message}))
            return
        super().write_error(status_code, **kwargs)

    def fail(self, error: KernelError):
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": error.status, "message": error.message}))


class KernelCentresHandler(_ServerKernelsHandler):
    @api_authenticated
    async def get(self, user_name):
        spawner, _kernels = self.server_kernels(user_name)
        await spawner.refresh_projects()
        report = await spawner.allocations() or {}
        choices = []
        for centre in spawner.federation.centres:
            partition = centre.partitions[0]
            defaults = default_resources(partition)
            projects = projects_at(centre, spawner.user.name)
            project = _default_project(spawner, centre.id, projects)
            entry = {"id": centre.id, "name": centre.name, "kernel_name": f"fedhub-{centre.id}",
                     "partitions": [{"name": p.name, "max_cores": p.max_cores, "max_memory_mb": p.max_memory_mb,
                                     "max_walltime_s": p.max_walltime_s,
                                     "gpus": [{"type": g.type, "max": g.max} for g in p.gpus]}
                                    for p in centre.partitions],
                     "projects": projects or [],
                     "defaults": {"partition": partition.name, **defaults, **({"project": project} if project else {})},
                     "available": True, "reason": ""}
            try:
                login_at(centre, spawner.user.name)
            except NoLogin as e:
                entry.update(available=False, reason=_("no login: {problem}").format(problem=e))
            if entry["available"] and projects == []:
                entry.update(available=False, reason=_("no project to charge there"))
            watcher = spawner.monitor.watcher(centre.id)
            spawner.monitor.ensure_running()
            if entry["available"] and watcher.latest is not None and not watcher.up:
                entry.update(available=False, reason=_("down: {centre} is not answering").format(centre=centre.name))
            quota = entry_for(report, centre.id, project)
            if entry["available"] and quota is not None and used_up(quota):
                entry.update(available=False, reason=_("allocation used up: {account} at {centre}").format(
                    account=quota["charge_account"], centre=centre.name))
            choices.append(entry)
        answer = {"centres": choices, "fields": option_schema()}
        away_from = self.get_argument("suggest_from", "")
        if away_from:
            answer["suggested"] = await self.suggest(spawner, away_from, choices)
        self.finish(json.dumps(answer))

    async def suggest(self, spawner, away_from: str, choices: list[dict]) -> dict | None:
        """Where a kernel leaving ``away_from`` would start soonest: the "any centre" placement
        for a kernel's default request, without that centre or any that cannot be chosen."""
        try:
            request = parse_user_options(spawner.federation, {"centre": "auto", **SUGGESTION_REQUEST},
                                         spawner.user.name, allow_auto=True)
        except OptionError as e:
            self.log.warning("No move suggestion for %s: %s: %s", spawner.user.name, e.field, e.message)
            return None
        decision = await spawner.place(request)
        usable = {c["id"] for c in choices if c["available"]} - {away_from}
        for estimate in decision.ranked:
            if estimate.centre in usable:
                return {"id": estimate.centre, "name": estimate.centre_name,
                        "why": estimate.describe(decision.now)}
        return None


def _default_project(spawner, centre_id: str, projects: list[str] | None) -> str | None:
    """The project a kernel at ``centre_id`` charges unless the user picks another: the server's
    own where the server runs, else the user's first project there."""
    if not projects:
        return None
    server = spawner.request  # the server's request, concrete once it started
    if server is not None and server.centre == centre_id and server.project in projects:
        return server.project
    return projects[0]


class KernelsHandler(_ServerKernelsHandler):
    @api_authenticated
    def get(self, user_name):
        _spawner, kernels = self.server_kernels(user_name)
        self.finish(json.dumps({"kernels": [r.public() for r in kernels.records.values()]}))

    @api_authenticated
    async def post(self, user_name):
        spawner, kernels = self.server_kernels(user_name)
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, _("the body must be JSON")) from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, _("the body must be a JSON object"))
        dry_run = body.pop("dry_run", False) is True
        key = body.pop("key", None)
        if not dry_run and (not isinstance(key, str) or not _KEY_RE.fullmatch(key)):
            raise web.HTTPError(400, "key: give the kernel's connection key (16-128 letters, digits, - or _)")
        curve_secret = body.pop("curve_secretkey", None)
        curve_public = None
        # CurveZMQ is required with internal SSL (FedHub's default); without it, as before issue 22
        if not dry_run and (curve_secret is not None or spawner.internal_ssl):
            try:
                curve_public = zmq.curve_public(curve_secret.encode()).decode()
            except (AttributeError, ValueError, zmq.ZMQError):
                raise web.HTTPError(400, "curve_secretkey: give the kernel's CurveZMQ secret key (40 Z85 "
                                         "characters, the second half of zmq.curve_keypair())") from None
        unknown = sorted(k for k in body if k not in ALLOWED_OPTIONS)
        if unknown:
            raise web.HTTPError(400, _("{field}: unknown option; allowed: {allowed}").format(
                field=unknown[0][:40], allowed=", ".join(ALLOWED_OPTIONS)))
        if not body.get("centre"):
            raise web.HTTPError(400, _("centre: choose the centre the kernel runs at"))
        await spawner.refresh_projects()
        try:
            request = parse_user_options(spawner.federation, body, spawner.user.name)
        except OptionError as e:
            raise web.HTTPError(400, _("{field}: {problem}").format(field=e.field, problem=e.message)) from None
        try:
            if dry_run:  # the lab's dialog: checked as a start would be, nothing submitted
                await spawner.check_allocation(request)
                centre = spawner.federation.centre(request.centre)
                return self.finish(json.dumps({"centre": centre.id, "centre_name": centre.name,
                                               "request": request.to_user_options(),
                                               "description": request.describe()}))
            keys = {"key": key, "curve_secretkey": curve_secret, "curve_publickey": curve_public}
            record = await kernels.start(request, {k: v for k, v in keys.items() if v})
        except KernelError as e:
            return self.fail(e)
        except SpawnException as e:  # the allocation check says what a spawn would
            return self.fail(KernelError(getattr(e, "jupyterhub_message", str(e)), e.status_code or 403))
        self.set_status(202)
        self.finish(json.dumps(record.public()))


class KernelHandler(_ServerKernelsHandler):
    @api_authenticated
    async def get(self, user_name, kernel_id):
        _spawner, kernels = self.server_kernels(user_name)
        known = self.get_argument("status", "")
        try:
            wait = min(max(float(self.get_argument("wait", "0")), 0.0), MAX_WAIT)
        except ValueError:
            return self.fail(KernelError(f"wait: seconds (0-{MAX_WAIT:.0f}), not {self.get_argument('wait')!r}"))
        if known and wait:
            await kernels.wait_for_change(kernel_id, known, wait)
        try:
            self.finish(json.dumps(kernels.get(kernel_id).public()))
        except KernelError as e:
            self.fail(e)

    @api_authenticated
    async def delete(self, user_name, kernel_id):
        _spawner, kernels = self.server_kernels(user_name)
        try:
            await kernels.shutdown(kernel_id)
        except KernelError as e:
            return self.fail(e)
        self.set_status(204)
        self.finish()


class KernelRestartHandler(_ServerKernelsHandler):
    @api_authenticated
    def post(self, user_name, kernel_id):
        _spawner, kernels = self.server_kernels(user_name)
        try:
            kernels.request_restart(kernel_id)
            self.finish(json.dumps(kernels.get(kernel_id).public()))
        except KernelError as e:
            self.fail(e)


class LauncherHandler(APIHandler):
    """The launcher in the kernel's job: no JupyterHub token, only its one-time kernel token."""

    def check_xsrf_cookie(self):
        pass  # no cookie is ever accepted here: the header token is the only credential

    def _record(self, kernel_id):
        spoken = self.request.headers.get(PROTOCOL_HEADER, "")
        if spoken != str(LAUNCHER_PROTOCOL):
            raise web.HTTPError(400, f"the kernel launcher speaks protocol {spoken or 'none (older than 1)'}; this hub "
                                     f"speaks {LAUNCHER_PROTOCOL} (FedHub {__version__}): install the fedhub-lab of "
                                     f"this hub's release in the centre's notebook environment")
        header = self.request.headers.get("Authorization", "")
        token = header[len("kernel "):] if header.startswith("kernel ") else ""
        kernels = kernels_by_id().get(kernel_id)
        if kernels is None:
            raise web.HTTPError(403, "unknown kernel or wrong token")
        try:
            kernels.check_token(kernel_id, token)
        except KernelError as e:
            raise web.HTTPError(e.status, e.message) from None
        return kernels

    def get(self, kernel_id):
        kernels = self._record(kernel_id)
        self.finish(json.dumps({"action": kernels.instruction(kernel_id)}))


    def post(self, kernel_id):
        kernels = self._record(kernel_id)
        try:
            body = json.loads(self.request.body or b"{}")
            if "exited" in body:
                action = kernels.report_exit(kernel_id, int(body["exited"]))
                return self.finish(json.dumps({"action": action}))
            node, ports = str(body.get("node", ""))[:128], dict(body["ports"])
            kernels.report_ports(kernel_id, node, ports)
        except KernelError as e:
            raise web.HTTPError(e.status, e.message) from None
        except (ValueError, KeyError, TypeError):
            raise web.HTTPError(400, 'the body must be {"node": "...", "ports": {"shell_port": N, ...}} '
                                     'or {"exited": <exit code>}') from None
        self.set_status(201)
        self.finish(json.dumps({"message": "ports recorded"}))


class LauncherKeysHandler(LauncherHandler):
    """The kernel's keys, to the launcher only (its token; a job whose TLS checked this hub)."""

    SUPPORTED_METHODS = ("GET",)

    def get(self, kernel_id):
        kernels = self._record(kernel_id)
        try:
            keys = kernels.hand_keys(kernel_id)
        except KernelError as e:
            raise web.HTTPError(e.status, e.message) from None
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(keys))


ROUTES = [
    (r"/api/fedhub/users/([^/]+)/kernel-centres", KernelCentresHandler),
    (r"/api/fedhub/users/([^/]+)/kernels", KernelsHandler),
    (r"/api/fedhub/users/([^/]+)/kernels/([0-9a-f]{16})", KernelHandler),
    (r"/api/fedhub/users/([^/]+)/kernels/([0-9a-f]{16})/restart", KernelRestartHandler),
    (r"/api/fedhub/kernels/([0-9a-f]{16})/launcher", LauncherHandler),
    (r"/api/fedhub/kernels/([0-9a-f]{16})/launcher/keys", LauncherKeysHandler),
]
