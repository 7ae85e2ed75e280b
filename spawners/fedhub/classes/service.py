"""FedHub's class service (``fedhub-classes``): the teachers' dashboard and its API, a
JupyterHub-managed service, so a burst of 500 starts never slows the hub's own pages.

    GET  {prefix}                                  the dashboard (a teacher's classes)
    GET  {prefix}api/classes                       the caller's classes
    GET  {prefix}api/classes/{class}               the roster: each student's server (state,
                                                   centre, since, last activity, allocation left),
                                                   the session, the reservations, a bulk action's progress
    POST {prefix}api/classes/{class}/start         start every student's server (202; in stages)
    POST {prefix}api/classes/{class}/stop          stop them
    POST {prefix}api/classes/{class}/students/{student}/start    start one
    POST {prefix}api/classes/{class}/handout      {"folder": "day1"}: the folder of the teacher's
                                                   server to every student's server (late ones too)
    POST {prefix}api/classes/{class}/collect      {"folder": "day1"}: each student's copy into the
                                                   teacher's collected/day1/<student>/

Everything a teacher does goes to the hub with the teacher's own token (their OAuth token in the
browser, or the API token a script sends), so JupyterHub's scopes, filtered to the class's
group, decide what is allowed; the service's own token only applies the class file at start,
reads rosters and allocations, and asks the hub for the short-lived one-server tokens that
hand-outs and collections send to each server (never its own: a server may record it). Configured as a traitlets application (``--ClassService.*``, written by
``fedhub.hub.setup`` from ``c.ClassService`` in jupyterhub_config.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web
from traitlets import Float, Integer, Unicode
from traitlets.config import Application

from .. import claims
from ..federation import load_federation
from ..i18n import DEFAULT as DEFAULT_LANGUAGE, InRequestLanguage, _, format_number, from_request
from ..i18n.jinja import FedHubI18n
from ..service_app import listen, run_until_stopped, ssh_sockets_in
from ..logins import usable_login
from ..slurm.client import SlurmClient
from ..slurm.commands import SchedulerError, SchedulerUnreachable
from .bulk import BulkResult, HubCaller, start_all, stop_all
from .materials import ClassMaterials, MaterialsError, ServerFiles, check_folder, deliver
from .model import ClassError, load_class_file, parse_class
from .reservations import REFUSED_MAKING, ReservationView, keep, read
from .roles import SERVICE_NAME

log = logging.getLogger("fedhub.classes")
TEMPLATES = Path(__file__).with_name("templates")
HUB_TEMPLATES = Path(__file__).parents[1] / "hub" / "templates"  # FedHub's additions to the hub's pages


class Classes:
    """The service's shared state: bulk actions under way, allocation figures read lately."""

    def __init__(self, api_url: str, own_token: str, quota_url: str, server_token_lifetime: int = 60):
        self.api_url = api_url
        self.server_token_lifetime = server_token_lifetime
        self.own = HubCaller(api_url, own_token)
        self.quota_url = quota_url.rstrip("/")
        self.actions: dict[str, dict] = {}  # class -> {"action", "started", "result": BulkResult, "done"}
        self._allocation: dict[str, tuple[float, dict]] = {}

    def as_caller(self, token: str) -> HubCaller:
        return HubCaller(self.api_url, token)

    async def server_token(self, class_name: str, user: str) -> str:
        """A token of ``user``'s that opens only their server, for about a minute: what a server
        they control may receive (it could record any header)."""
        status, answer, _headers = await self.own.call("POST", f"/fedhub/classes/{quote(class_name, safe='')}/server-token",
                                                {"user": user, "expires_in": self.server_token_lifetime})
        if status != 201:
            raise MaterialsError(f"the hub gave no token for {user}'s server ({status}: {answer.get('message', '')})")
        return answer["token"]

    async def allocation(self, student: str) -> dict:
        """The student's allocation report (the quota service's), reused for a minute."""
        kept = self._allocation.get(student)
        if kept is not None and time.monotonic() - kept[0] < 60:
            return kept[1]
        report: dict = {}
        if self.quota_url:
            quota = HubCaller(self.quota_url, self.own.token, timeout=10)
            status, answer, _headers = await quota.call("GET", f"/api/quota/{quote(student, safe='')}")
            report = answer if status == 200 else {}
        self._allocation[student] = (time.monotonic(), report)
        return report


def allocation_left(report: dict, centre: str | None) -> str:
    """'12.5 core-h left in proj_alice' for the centre (or the first centre the report has)."""
    entries = [e for e in report.get("centres", []) if centre is None or e.get("centre") == centre]
    if not entries:
        return ""
    entry = entries[0]
    core = entry.get("core_hours") or {}
    account = entry.get("charge_account")
    if entry.get("level") == "used-up":
        return _("used up in {account}").format(account=account)
    if core.get("limit") is None:
        return _("no limit in {account}").format(account=account)
    return _("{hours} core-h left in {account}").format(hours=format_number(core["limit"] - core["used"]),
                                                         account=account)


class _PageUser:
    """The signed-in user as JupyterHub's page template reads one."""

    def __init__(self, name: str):
        self.name = name
        self.json_escaped_name = json.dumps(name)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e") \
            .replace("&", "\\u0026")


@lru_cache(maxsize=1)
def _pages() -> jinja2.Environment:
    """FedHub's templates, then the hub's own (FedHub's additions to them, then JupyterHub's), so
    the dashboard extends the very page.html the hub's pages extend."""
    jupyterhub_templates = os.path.join(DATA_FILES_PATH, "templates")
    return jinja2.Environment(autoescape=True, extensions=[FedHubI18n], loader=jinja2.ChoiceLoader([
        # as the hub's own loader: "templates/page.html" is JupyterHub's, which FedHub's page.html extends
        jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader(jupyterhub_templates)}, "/"),
        jinja2.FileSystemLoader(TEMPLATES), jinja2.FileSystemLoader(HUB_TEMPLATES),
        jinja2.FileSystemLoader(jupyterhub_templates)]))


def dashboard_page(user: str, prefix: str, xsrf: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The dashboard's page for ``user``: JupyterHub's page (header, styles, dark mode, the user
    menu) around the roster. The hub's paths are those the hub's own pages use, through the proxy."""
    base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    hub = url_path_join(base, "hub/")

    def static_url(path: str, include_version: bool = True) -> str:
        return url_path_join(hub, "static", path)
    return _pages().get_template("class_dashboard.html").render(
        base_url=hub, prefix=base, static_url=static_url, user=_PageUser(user), no_spawner_check=True,
        login_url=url_path_join(hub, "login"), logout_url=url_path_join(hub, "logout"), logo_url="",
        services=[], parsed_scopes=set(), admin_access=False, announcement="", version_hash="",
        xsrf_token=xsrf, dashboard={"prefix": prefix, "xsrf": xsrf}, fedhub_language=language)


class _Handler(InRequestLanguage, HubOAuthenticated, web.RequestHandler):
    def initialize(self, classes: Classes, keeper: "ReservationKeeper", courier: "Courier"):
        self.classes = classes
        self.keeper = keeper
        self.courier = courier

    @property
    def caller(self) -> HubCaller:
        return self.classes.as_caller(self.hub_auth.get_token(self))

    def answer(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.answer(status_code, {"status": status_code, "message": message})

    async def roster(self, name: str) -> dict:
        """The hub's roster of the class, as the caller may see it (their 403/404 is ours)."""
        status, answer, _headers = await self.caller.call("GET", f"/fedhub/classes/{quote(name, safe='')}/roster")
        if status != 200:
            raise web.HTTPError(status, answer.get("message", "the hub refused"))
        return answer


class MaterialsHandler(_Handler):
    @web.authenticated
    async def post(self, name: str, action: str):
        await self.roster(name)  # the caller teaches the class (else the hub's 403/404)
        try:
            body = json.loads(self.request.body or b"{}")
            folder = check_folder(body.get("folder") if isinstance(body, dict) else None)
        except (ValueError, MaterialsError) as e:
            raise web.HTTPError(400, str(e) if isinstance(e, MaterialsError) else "the body must be JSON") from None
        who = self.current_user["name"]
        own = await self.courier.roster(name)
        teacher = next((t for t in own.get("teachers", []) if t["name"] == who), None)
        if teacher is None:
            raise web.HTTPError(403, f"only a teacher of {name} hands out or collects its materials")
        materials = self.courier.materials(name)
        if action == "handout":
            if not teacher["server_url"]:
                raise web.HTTPError(409, "start your own server first: the hand-out is read from its folder "
                                         f"{folder!r}")
            try:
                token = await self.classes.server_token(name, who)
                files = await ServerFiles(teacher["server_url"], token).tree(folder)
            except MaterialsError as e:
                raise web.HTTPError(400, f"folder: {e}") from None
            materials.add_handout(folder, files, who)
            answer = {"folder": folder, "files": len(files)}
        else:
            materials.add_collection(folder, who)
            answer = {"folder": folder}
        log.info("Class %s: %s of %s by %s", name, action, folder, who)
        self.courier.wake.set()
        self.answer(202, answer)


class DashboardHandler(_Handler):
    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(dashboard_page(self.current_user["name"], self.settings["prefix"], self.xsrf_token.decode(),
                                   from_request(self)))


class ClassListHandler(_Handler):
    @web.authenticated
    async def get(self):
        status, answer, _headers = await self.caller.call("GET", "/fedhub/classes")
        self.answer(status, answer)


class ClassHandler(_Handler):
    @web.authenticated
    async def get(self, name: str):
        roster = await self.roster(name)
        reports = await asyncio.gather(*(self.classes.allocation(s["name"]) for s in roster["students"]))
        materials = self.courier.materials(name)
        for student, report in zip(roster["students"], reports):
            student["allocation_left"] = allocation_left(report, student.get("centre"))
            student["materials"] = materials.summary(student["name"])
        status, spec, _headers = await self.caller.call("GET", f"/fedhub/classes/{quote(name, safe='')}")
        roster["settings"] = spec if status == 200 else {}
        roster["reservations"] = [view.as_json() for view in self.keeper.views.get(name, [])]
        action = self.classes.actions.get(name)
        if action is not None:
            result: BulkResult = action["result"]
            roster["action"] = {"action": action["action"], "done": action["done"], "counts": result.counts(),
                                "outcomes": result.outcomes, "retries_429": result.retries_429}
        self.answer(200, roster)


class BulkHandler(_Handler):
    @web.authenticated
    async def post(self, name: str, action: str):
        roster = await self.roster(name)
        current = self.classes.actions.get(name)
        if current is not None and not current["done"]:
            return self.answer(409, {"status": 409, "message": f"{current['action']} of {name} is still under way"})
        if action == "start":
            students = [s["name"] for s in roster["students"] if s["state"] in ("stopped", "failed")]
        else:
            students = [s["name"] for s in roster["students"] if s["state"] != "stopped"]
        if action == "start":
            self.keeper.wake.set()  # the session's reservations made (or moved) before the students arrive
        result = BulkResult()
        entry = {"action": action, "started": time.time(), "result": result, "done": False}
        self.classes.actions[name] = entry
        caller = self.caller
        who = self.current_user["name"]

        async def run():
            try:
                if action == "start":
                    await start_all(caller, name, students, result=result)
                else:
                    await stop_all(caller, students, result=result)
            finally:
                entry["done"] = True
                log.info("%s of class %s by %s: %s", action, name, who, result.counts())
        asyncio.ensure_future(run())
        self.answer(202, {"action": action, "students": students})


class StudentStartHandler(_Handler):
    @web.authenticated
    async def post(self, name: str, student: str):
        roster = await self.roster(name)
        if student not in {s["name"] for s in roster["students"]}:
            raise web.HTTPError(404, f"{student!r} is not a student of {name}")
        result = await start_all(self.caller, name, [student])
        outcome = result.outcomes.get(student, "")
        self.answer(202 if outcome in ("started", "already running") else 400,
                    {"student": student, "outcome": outcome})


class ReservationKeeper:
    """Every ``interval``: for each class, make, move or end the hub's reservations to match the
    current session (or the next within a day), and read the state of those the centres made."""

    def __init__(self, classes: Classes, federation, interval: float = 30.0):
        self.classes = classes
        self.federation = federation
        self.interval = interval
        self.clients = {c.id: SlurmClient(c) for c in federation.centres}
        self.views: dict[str, list[ReservationView]] = {}
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.once()
            except Exception:
                log.exception("Keeping the classes' reservations failed; "
                                                              "trying again in %.0f s", self.interval)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def once(self) -> None:
        status, answer, _headers = await self.classes.own.call("GET", "/fedhub/classes")
        if status != 200:
            return
        now = datetime.now(timezone.utc)
        views: dict[str, list[ReservationView]] = {}
        for raw in answer.get("classes", []):
            try:
                spec = parse_class(raw, self.federation)
            except ClassError:
                continue
            session = spec.session_at(now)
            upcoming = spec.next_session(now)
            if session is None and upcoming is not None and upcoming.start - now < timedelta(days=1):
                session = upcoming
            for place in spec.centres:
                name = spec.reservation_at(place.centre)
                if name is None:
                    continue
                centre = self.federation.centre(place.centre)
                client = self.clients[place.centre]
                note = ""
                try:
                    if place.creates_reservation:
                        state, fields, note = await keep(client, spec, place, session,
                                                         await self.logins(spec, centre))
                    else:
                        state, fields = await read(client, name)
                except (SchedulerError, SchedulerUnreachable, ValueError) as e:
                    log.error("Reservation %s at %s for class %s: %s", name, centre.id, spec.name, e)
                    state, fields, note = "not made", {}, REFUSED_MAKING
                views.setdefault(spec.name, []).append(ReservationView(
                    name, centre.id, centre.name, state, place.creates_reservation,
                    until=fields.get("EndTime", "") if state == "active" else "", note=note))
        self.views = views

    async def logins(self, spec, centre) -> list[str]:
        """The logins of the class's students and teachers at ``centre`` (those who have one)."""
        status, group, _headers = await self.classes.own.call("GET", f"/groups/{quote(spec.name, safe='')}")
        members = group.get("users", []) if status == 200 else []
        found = (usable_login(centre, user) for user in dict.fromkeys([*members, *spec.teachers]))
        return sorted({login for login in found if login})


class Courier:
    """Every ``interval``: whatever hand-outs and collections a running student's server is still
    owed, made (students who start late, servers that were stopped during a collection)."""

    def __init__(self, classes: Classes, state_dir: str, interval: float = 5.0):
        self.classes = classes
        self.dir = Path(state_dir or ".") / "classes"
        self.interval = interval
        self.wake = asyncio.Event()
        self._materials: dict[str, ClassMaterials] = {}

    def materials(self, name: str) -> ClassMaterials:
        if name not in self._materials:
            self._materials[name] = ClassMaterials(self.dir, name)
        return self._materials[name]

    async def roster(self, name: str) -> dict:
        status, answer, _headers = await self.classes.own.call("GET", f"/fedhub/classes/{quote(name, safe='')}/roster")
        return answer if status == 200 else {}

    async def run_forever(self) -> None:
        if self.dir.is_dir():
            for path in self.dir.glob("*.json"):
                self.materials(path.stem)
        while True:
            for name, materials in list(self._materials.items()):
                try:
                    await self.once(name, materials)
                except Exception:
                    log.exception("Materials of class %s: trying again", name)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    async def once(self, name: str, materials: ClassMaterials) -> None:
        if not (materials.state["handouts"] or materials.state["collections"]):
            return
        roster = await self.roster(name)
        teachers = {t["name"]: t["server_url"] for t in roster.get("teachers", []) if t.get("server_url")}
        for student in roster.get("students", []):
            if student.get("server_url") and materials.owed(student["name"]):
                try:
                    await deliver(materials, student["name"], student["server_url"], teachers,
                                  lambda user: self.classes.server_token(name, user))
                except MaterialsError as e:
                    log.warning("Class %s, %s: %s", name, student["name"], e)


async def apply_class_file(classes: Classes, path: str, federation_file: str, log, attempts: int = 30) -> None:
    """Create or update each class of the class file through the hub's class API."""
    try:
        specs = load_class_file(path, load_federation(federation_file))
    except ClassError as e:
        log.error("The class file is not applied: %s", e)
        return
    for spec in specs:
        for attempt in range(attempts):
            status, answer, _headers = await classes.own.call("PUT", f"/fedhub/classes/{spec.name}", spec.to_json())
            if status in (200, 201):
                log.info("Class %s from %s applied", spec.name, path)
                break
            if status < 500 and status != 404:
                log.error("Class %s from %s refused by the hub: %s", spec.name, path, answer.get("message"))
                break
            await asyncio.sleep(1)


class ClassService(Application):
    name = "fedhub-classes"
    description = "FedHub's classes: the teachers' dashboard, bulk start and stop"

    federation_file = Unicode("", help="The federation file (the hub's).").tag(config=True)
    class_file = Unicode("", help="A class file (classes: [...]) applied through the hub's class API at "
                                  "start; classes may also be made through the API.").tag(config=True)
    quota_url = Unicode("", help="The quota service's URL (allocation left per student).").tag(config=True)
    port = Integer(8083, help="Port the service listens on (127.0.0.1); the hub's proxy routes to it.").tag(config=True)
    reservation_interval = Float(30.0, help="Seconds between checks of the classes' Slurm reservations.").tag(config=True)
    state_dir = Unicode("", help="The hub's state directory (the users' claimed logins; the classes' hand-outs "
                                 "under classes/).").tag(config=True)
    server_token_lifetime = Integer(60, help="Seconds a token sent to a student's or teacher's server for a "
                                             "hand-out or collection stays valid (1-60); it opens only that "
                                             "server.").tag(config=True)
    materials_interval = Float(5.0, help="Seconds between looks for students' servers still owed a hand-out or "
                                         "a collection.").tag(config=True)

    def make_app(self) -> web.Application:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
        self.classes = Classes(os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
                               os.environ.get("JUPYTERHUB_API_TOKEN", ""), self.quota_url,
                               self.server_token_lifetime)
        claims.configure(self.state_dir or None)  # claimed logins, for the reservations' Users
        ssh_sockets_in(self.state_dir)
        self.keeper = ReservationKeeper(self.classes, load_federation(self.federation_file), self.reservation_interval)
        self.courier = Courier(self.classes, self.state_dir, self.materials_interval)
        args = {"classes": self.classes, "keeper": self.keeper, "courier": self.courier}
        return web.Application([
            (prefix, DashboardHandler, args),
            (url_path_join(prefix, "api/classes"), ClassListHandler, args),
            (url_path_join(prefix, "api/classes/([^/]+)"), ClassHandler, args),
            (url_path_join(prefix, "api/classes/([^/]+)/(start|stop)"), BulkHandler, args),
            (url_path_join(prefix, "api/classes/([^/]+)/students/([^/]+)/start"), StudentStartHandler, args),
            (url_path_join(prefix, "api/classes/([^/]+)/(handout|collect)"), MaterialsHandler, args),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ], cookie_secret=os.urandom(32), prefix=prefix)

    def start(self) -> None:
        fedhub_log = logging.getLogger("fedhub")  # the lines a centre operator acts on, on the hub's log
        fedhub_log.setLevel(logging.INFO)
        for handler in self.log.handlers:
            fedhub_log.addHandler(handler)
        fedhub_log.propagate = False
        where = listen(self.make_app(), SERVICE_NAME, self.port, "c.ClassService.port")
        print(f"fedhub-classes listening on {where}", file=sys.stderr)
        loop = ioloop.IOLoop.current()
        async def begin():
            if self.class_file:
                await apply_class_file(self.classes, self.class_file, self.federation_file, log)
            await self.keeper.run_forever()
        loop.add_callback(begin)
        loop.add_callback(self.courier.run_forever)
        run_until_stopped(loop)  # the hub stops its services with SIGINT


main = ClassService.launch_instance

if __name__ == "__main__":
    main()
