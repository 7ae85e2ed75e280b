"""What a user asks for, up to a validated ``SpawnRequest``: the form (projects read from Slurm,
idle cores, pending jobs, allocation left, the classes in session), the form's and the REST
API's options (one validation, ``request.parse_user_options``), a class's one-click start, and
who may start a server for someone else (an admin; a teacher only as their class's start)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from jupyterhub.scopes import has_scope

from .. import runtime
from ..classes.model import ClassSpec
from ..classes.reservations import ReservationCache
from ..classes.roles import TEACH_SCOPE, stored_class
from ..classes.spawn import class_request
from ..errors import user_error
from ..i18n import _, from_request, ngettext, use_language
from ..projects import refresh_associations
from ..quota.client import fetch_report
from ..quota.service import SERVICE_NAME as QUOTA_SERVICE
from ..request import OptionError, SpawnRequest, parse_user_options
from ..slurm.commands import SchedulerError, SchedulerUnreachable
from ..units import format_memory_mb
from .form import centre_facts, options_from_form

def reservation_states() -> ReservationCache:
    """The form's "reservation ... : active", read once for all users."""
    shared = runtime.current()
    if shared.reservations is None:
        shared.reservations = ReservationCache()
    return shared.reservations


def invalid_options(error: OptionError):
    return user_error(_("Invalid {field}: {problem}").format(field=error.field, problem=error.message),
                      reason="invalid-options", field=error.field)


class RequestIntake:
    """The form and the options of one spawner."""

    _form_token_value: str | None = None
    _form_token_until: float = 0.0

    def __init__(self, spawner):
        self.spawner = spawner

    async def refresh_projects(self, timeout: float = 5.0) -> None:
        """Read the user's Slurm associations where a centre takes projects from them (kept for a
        minute); a centre that does not answer keeps what was read before."""
        spawner = self.spawner
        async def one(watcher):
            await asyncio.wait_for(refresh_associations(watcher.centre, spawner.user.name, watcher.client), timeout)
        watchers = [w for w in spawner.monitor.watchers.values()
                    if w.centre.projects is not None and w.centre.projects.slurm_associations]
        for watcher, result in zip(watchers, await asyncio.gather(*(one(w) for w in watchers),
                                                                  return_exceptions=True)):
            if isinstance(result, BaseException):
                spawner.log.warning("[%s] could not read the Slurm associations at %s: %s", spawner.user.name,
                                 watcher.centre.id, result)

    async def form_facts(self, timeout: float = 3.0) -> dict[str, dict]:
        """What the form shows beside each centre: idle cores (the monitor's node figures, at
        most 30 s old and shared by every page view) and the allocation left (the quota
        service's cache). A centre that does not answer within ``timeout`` shows neither."""
        spawner = self.spawner
        async def figures(watcher):
            return await asyncio.wait_for(watcher.node_figures(), timeout)
        watchers = [w for w in spawner.monitor.watchers.values() if w.up]
        found = await asyncio.gather(*(figures(w) for w in watchers), return_exceptions=True)
        seen = {w.centre.id: (w, f) for w, f in zip(watchers, found) if not isinstance(f, BaseException)}
        cores = {cid: {p.name: f.idle_cpus(p.name) for p in w.centre.partitions} for cid, (w, f) in seen.items()}
        pending = {cid: f.pending for cid, (w, f) in seen.items()}
        report = None
        if spawner.quota_service_url:
            report = await fetch_report(spawner.quota_service_url, self._form_token(), spawner.user.name,
                                        timeout=timeout, fresh=False)
        return centre_facts(report, cores, pending)

    def _form_token(self) -> str:
        """A token of the user's that may only call the quota service, for the form (a server's
        own token exists only once it starts); made once an hour, not per page view."""
        if self._form_token_value is None or time.time() > self._form_token_until:
            self._form_token_value = self.spawner.user.new_api_token(
                note="FedHub spawn form: allocation figures", expires_in=3600,
                scopes=[f"access:services!service={QUOTA_SERVICE}"])
            self._form_token_until = time.time() + 3000
        return self._form_token_value

    def take_language(self) -> str:
        """The language of the request being served (its cookie, its Accept-Language), for what
        this spawner says from now on: the form, its refusals, the start's progress, the lab."""
        spawner = self.spawner
        handler = getattr(spawner, "handler", None)
        if handler is not None:
            spawner.language = from_request(handler)
        return use_language(spawner.language)

    def options_from_form(self, form_data) -> dict:
        """The form's fields as user options ("Start for <class>": the class's name only, its
        settings are checked on apply); a bad field is a 400 naming it."""
        spawner = self.spawner
        self.take_language()
        if form_data.get("class"):
            return {"class": str(form_data["class"][0])[:64]}
        form_data = dict(form_data)
        restore = (form_data.pop("restore", None) or [""])[0]
        try:
            options = options_from_form(spawner.federation, form_data, spawner.user.name,
                                        allow_auto=spawner.auto_placement).to_user_options()
        except OptionError as e:
            raise invalid_options(e) from None
        return {**options, "restore": str(restore)[:40]} if restore else options

    async def apply_request_async(self, user_options) -> SpawnRequest:
        self.take_language()
        self.check_requester(user_options)
        await self.refresh_projects()
        return self.apply_request(user_options)

    def check_requester(self, user_options) -> None:
        """A server started on someone else's behalf: an admin may start it as asked; a teacher
        only as a start for a class they teach, so it gets the class's resources and charges the
        class's project, never whatever the teacher writes against the student's allocation."""
        spawner = self.spawner
        handler = getattr(spawner, "handler", None)
        requester = getattr(handler, "current_user", None)
        if requester is None or (requester.name == spawner.user.name and isinstance(requester, type(spawner.user))):
            return
        scopes = getattr(handler, "parsed_scopes", set())
        if has_scope("admin:servers", scopes):
            return
        klass = user_options.get("class") if isinstance(user_options, dict) else None
        if isinstance(klass, str) and has_scope(f"{TEACH_SCOPE}!group={klass}", scopes, db=handler.db):
            return
        spawner.log.warning("[%s] %s asked to start this server outside a class they teach: refused",
                         spawner.user.name, requester.name)
        raise user_error(f"{requester.name} may start {spawner.user.name}'s server only as a start for a class they "
                         f"teach ({{\"class\": \"<name>\"}}): it then gets the class's resources and charges the "
                         "class's project", reason="not-your-class", status_code=403)

    def apply_request(self, user_options) -> SpawnRequest:
        """Validate user options (form or API) into the request this spawn will run."""
        spawner = self.spawner
        try:
            if isinstance(user_options, dict) and "restore" in user_options:
                user_options = dict(user_options)
                wanted = user_options.pop("restore")
                if wanted and spawner.ending.choose(wanted) is None:
                    raise OptionError("restore", f"{str(wanted)[:40]!r} is not a saved session of yours; "
                                                 f"GET /hub/api/fedhub/users/{spawner.user.name}/snapshots lists them")
            else:
                spawner.ending.choose(None)
            if isinstance(user_options, dict) and "class" in user_options:
                if spawner.name:  # the class's dashboard, bulk start and hand-outs know the default server
                    raise OptionError("class", f"a class starts your default server, not the named server "
                                               f"{spawner.name!r}; use POST /hub/api/users/{spawner.user.name}/server")
                spawner.request = class_request(self._class_of_user(user_options["class"]), spawner.federation,
                                             spawner.user.name, user_options, datetime.now(timezone.utc))
            else:
                spawner.request = parse_user_options(spawner.federation, user_options, spawner.user.name,
                                                  allow_auto=spawner.auto_placement)
        except OptionError as e:
            spawner.log.info("[%s] rejected user options: %s", spawner.user.name, e)
            raise invalid_options(e) from None
        return spawner.request

    def classes(self) -> list[ClassSpec]:
        """The classes this server's user is a student of (their groups that are classes)."""
        spawner = self.spawner
        found = (stored_class(group, spawner.federation) for group in spawner.user.groups)
        return sorted((spec for spec in found if spec is not None), key=lambda spec: spec.name)

    async def classes_in_session(self) -> list[dict]:
        """The user's classes in session now, as the form offers them ("Start for <class>"), with
        whether each reservation is active (Slurm asked at most every 30 s per reservation)."""
        spawner = self.spawner
        now = datetime.now(timezone.utc)
        offered = []
        for spec in self.classes():
            session = spec.session_at(now)
            if session is None:
                continue
            where = ", ".join(spawner.federation.centre(c.centre).name for c in spec.centres)
            summary = ngettext("{n} core, {memory} memory, at {where}", "{n} cores, {memory} memory, at {where}",
                               spec.cores).format(n=spec.cores, memory=format_memory_mb(spec.memory_mb), where=where)
            for place in spec.centres:
                name = spec.reservation_at(place.centre)
                watcher = spawner.monitor.watchers.get(place.centre)
                if name and watcher is not None:
                    try:
                        state = await asyncio.wait_for(reservation_states().state(watcher.client, name), 5)
                    except (asyncio.TimeoutError, SchedulerError, SchedulerUnreachable):
                        state = "unknown"
                    summary += _("; reservation {name} at {centre}: {state}").format(
                        name=name, centre=watcher.centre.name, state=reservation_state_text(state))
            offered.append({"name": spec.name, "title": spec.title, "until": f"{session.end.astimezone():%H:%M}",
                            "summary": summary})
        return offered

    def _class_of_user(self, name) -> ClassSpec:
        spec = next((spec for spec in self.classes() if spec.name == name), None)
        if spec is None:
            raise OptionError("class", _("{name} is not a class you are a student of").format(name=repr(str(name)[:48])))
        return spec


def reservation_state_text(state: str) -> str:
    """A reservation's state (classes.reservations) in the user's words."""
    words = {"active": _("active"), "inactive": _("inactive"), "missing": _("missing"), "unknown": _("unknown"),
             "not made": _("not made")}
    return words.get(state, state)
