"""What a user does about a server's end: continue it at another centre
(``spawning/continuation.py`` does the work), or extend it where the centre allows
(``spawning/extension.py``):

    POST   /hub/api/fedhub/users/<user>/server/continue           the default server
    POST   /hub/api/fedhub/users/<user>/servers/<name>/continue   a named one
           {"centre": "<id>" | "auto", partition, project, cores, memory, gpus, gpu_type, walltime}
           -> 202 {"id", "url", ...}; cores, memory, gpus and walltime default to the running
           server's; a bad field is a 400 naming it, and nothing is started
    GET    /hub/api/fedhub/users/<user>/continues                 the user's continuations
    GET    /hub/api/fedhub/users/<user>/continues/<id>            status (queued, copying, moving,
           switching, done, failed, cancelled), phase, message, centre, server_url, kernels
           (with their new ids), files (count, bytes), reason
    DELETE /hub/api/fedhub/users/<user>/continues/<id>            cancel (before the switch)

    POST   /hub/api/fedhub/users/<user>/server/extend             {"minutes": N} (default: the
    POST   /hub/api/fedhub/users/<user>/servers/<name>/extend     centre's step) -> 200 {"extended_s",
           "seconds_left", "extendable_s"}; 409 naming the field when the centre does not allow it
           or the job has had all it may

Who may: whoever may start and stop the server (JupyterHub's ``servers`` scope: the user,
admins, a class's teachers for its students), and the server itself with its own token
(``custom:fedhub:continue!server``, for the lab's button). Anyone else gets 404.
"""

from __future__ import annotations

import json
from datetime import datetime

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from ...request import OptionError, parse_user_options
from ...spawning import continuation, extension
from ...units import format_memory_mb, format_walltime
from ...i18n import InRequestLanguage, _
from .auth import api_authenticated

CONTINUE_SCOPE = "custom:fedhub:continue"
INHERITED = ("cores", "memory", "gpus", "walltime")  # taken from the running server unless given


class _ContinueHandler(InRequestLanguage, APIHandler):
    def may_continue(self, user_name: str, server: str) -> bool:
        target = f"!server={user_name}/{server}"
        return any(has_scope(scope + target, self.parsed_scopes, db=self.db) for scope in ("servers", CONTINUE_SCOPE))

    def refuse(self, status: int, field: str, message: str):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status, "field": field, "message": message}))

    def answer(self, record, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        url = continuation.url_of(self.hub.base_url, record)
        if status == 202:
            self.set_header("Location", url)
        self.finish(json.dumps({**record.public(), "url": url}))

    def running_spawner(self, user_name: str, server: str):
        """The user's running FedHub server ``server``, or None once the refusal was answered
        (404 for one the caller may not act on or that does not exist, 409 when not running)."""
        user = self.find_user(user_name)
        if user is None or not self.may_continue(user_name, server):
            raise web.HTTPError(404, "No access to resources or resources not found")
        spawner = user.spawners.get(server)
        if server and (spawner is None or not hasattr(spawner, "launch")):
            self.refuse(404, "server", _("{user} has no FedHub server {server}").format(user=user_name, server=repr(server)))
            return None
        if spawner is None or not spawner.ready or spawner.job is None or not spawner.job.job_id or spawner.pending:
            self.refuse(409, "server", _("{user}'s server {server} is not running; start it instead "
                                         "(POST /hub/api/users/<user>/server)").format(user=user_name, server=repr(server)))
            return None
        return spawner

    def find(self, user_name: str, continue_id: str):
        record = continuation.continuations().get(continue_id)
        if record is None or record.user != user_name or not self.may_continue(user_name, record.server):
            raise web.HTTPError(404, _("no continuation {id} of {user}'s servers").format(id=continue_id, user=user_name))
        return record


class StartContinueHandler(_ContinueHandler):
    @api_authenticated
    async def post(self, user_name: str, server_name: str | None = None):
        spawner = self.running_spawner(user_name, server_name or "")
        if spawner is None:
            return
        if spawner.continuing is not None:
            return self.refuse(409, "server", _("this server is already continuing at another centre (continuation {id})")
                               .format(id=spawner.continuing.record.id))
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return self.refuse(400, "body", "the body must be JSON, e.g. {\"centre\": \"gamma\"}")
        if not isinstance(body, dict):
            return self.refuse(400, "body", "the body must be a JSON object, e.g. {\"centre\": \"gamma\"}")
        if not body.get("centre"):
            return self.refuse(400, "centre", _("say where to continue: a centre's id, or \"auto\" for the soonest"))
        running = spawner.request
        options = dict(body)
        if running is not None and not running.klass:
            inherited = {"cores": running.cores, "memory": format_memory_mb(running.memory_mb),
                         "gpus": running.gpus, "walltime": format_walltime(running.walltime_s)}
            for name in INHERITED:
                if name not in options and (name != "gpus" or inherited["gpus"]):
                    options[name] = inherited[name]
        try:
            request = parse_user_options(spawner.federation, options, user_name, allow_auto=spawner.auto_placement)
        except OptionError as e:
            return self.refuse(400, e.field, _("Invalid {field}: {problem}").format(field=e.field, problem=e.message))
        record = continuation.begin(spawner, request)
        self.answer(record, 202)


class ExtendHandler(_ContinueHandler):
    @api_authenticated
    async def post(self, user_name: str, server_name: str | None = None):
        spawner = self.running_spawner(user_name, server_name or "")
        if spawner is None:
            return
        try:
            body = json.loads(self.request.body or b"{}")
            minutes = body.get("minutes") if isinstance(body, dict) else "?"
            seconds = None if minutes is None else int(minutes) * 60
        except (ValueError, TypeError):
            return self.refuse(400, "minutes", _("give whole minutes, e.g. {example}").format(example='{"minutes": 30}'))
        try:
            added = await extension.extend(spawner, seconds)
        except extension.ExtendRefused as e:
            return self.refuse(e.status, e.field, str(e))
        seen = await spawner.job.observe(fresh=False)
        info = seen.info if seen.answered else None
        left = int((info.end_time.astimezone() - datetime.now().astimezone()).total_seconds()) \
            if info and info.end_time else None
        self.finish(json.dumps({"extended_s": added, "seconds_left": left,
                                "extendable_s": extension.extendable_s(spawner, info)}))


class ContinuesHandler(_ContinueHandler):
    @api_authenticated
    def get(self, user_name: str):
        mine = [c.public() for c in continuation.continuations().values()
                if c.user == user_name and self.may_continue(user_name, c.server)]
        self.finish(json.dumps({"continues": mine}))


class ContinueHandler(_ContinueHandler):
    @api_authenticated
    def get(self, user_name: str, continue_id: str):
        self.answer(self.find(user_name, continue_id))

    @api_authenticated
    def delete(self, user_name: str, continue_id: str):
        record = self.find(user_name, continue_id)
        if not continuation.cancel(record):
            return self.refuse(409, "status", _("the continuation is {status}; it can no longer be cancelled").format(
                status=record.status))
        self.answer(record, 202)


ROUTES = [
    (r"/api/fedhub/users/([^/]+)/server/continue", StartContinueHandler),
    (r"/api/fedhub/users/([^/]+)/servers/([^/]+)/continue", StartContinueHandler),
    (r"/api/fedhub/users/([^/]+)/server/extend", ExtendHandler),
    (r"/api/fedhub/users/([^/]+)/servers/([^/]+)/extend", ExtendHandler),
    (r"/api/fedhub/users/([^/]+)/continues", ContinuesHandler),
    (r"/api/fedhub/users/([^/]+)/continues/([0-9a-f]{16})", ContinueHandler),
]
