"""The hub's class API: classes are JupyterHub groups, their settings a group property, and their
teachers' rights a role of JupyterHub scopes filtered to the group. It runs inside the hub
because roles can only be made there (JupyterHub has no REST API for roles).

    GET    /hub/api/fedhub/classes           the classes the caller teaches (an admin: all)
    GET    /hub/api/fedhub/classes/{name}    one class's settings
    GET    /hub/api/fedhub/classes/{name}/roster   each student's server: state (stopped, queued,
                                             pending at Slurm with the reason, running, failed with
                                             the reason), centre, since, last activity
    PUT    /hub/api/fedhub/classes/{name}    create or replace a class (admins); its teachers may
                                             change its title, centres, resources and sessions
    DELETE /hub/api/fedhub/classes/{name}    remove the class's settings and its teachers' role
                                             (admins; the group stays, it may be the provider's)
    POST   /hub/api/fedhub/classes/{name}/server-token   {"user": <member>}: a token for one call
                                             of the class service to that user's own server
                                             (the class service only; see ServerTokenHandler)

Admins are callers with both ``admin:groups`` and ``admin:users`` (naming teachers grants them a
role), or with ``custom:fedhub:classes`` (the class service, which applies the class file). A teacher is whoever holds ``custom:fedhub:teach!group=<class>``, which only the class's
role gives. Everything a teacher may do elsewhere in the hub follows from that role's scopes,
so JupyterHub itself refuses a teacher anything outside their class.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from urllib.parse import urlparse

from jupyterhub import orm, roles
from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from ...federation import federation_at
from ...classes.model import PROPERTY, ClassError, beyond_limits, parse_class
from ...classes.roles import CLASSES_SCOPE, TEACH_SCOPE, TEACHER_FIELDS, stored_class, sync_teacher_role
from ...i18n import InRequestLanguage, _
from ...jobs.progress import pending_message
from .auth import api_authenticated

class _ClassHandler(InRequestLanguage, APIHandler):
    @property
    def federation(self):
        path = self.settings["config"].FederatedSpawner.get("federation_file")
        if not path:
            raise web.HTTPError(503, "this hub has no federation file (c.FederatedSpawner.federation_file)")
        return federation_at(path)

    def is_admin(self) -> bool:
        return has_scope(CLASSES_SCOPE, self.parsed_scopes, db=self.db) or (
            has_scope("admin:groups", self.parsed_scopes, db=self.db)
            and has_scope("admin:users", self.parsed_scopes, db=self.db))

    def teaches(self, name: str) -> bool:
        return has_scope(f"{TEACH_SCOPE}!group={name}", self.parsed_scopes, db=self.db)

    def fail(self, status: int, message: str, field: str | None = None):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status, "message": message, **({"field": field} if field else {})}))


class ClassListHandler(_ClassHandler):
    @api_authenticated
    def get(self):
        """The caller's classes. When the class service asks (every reservation_interval, 30 s),
        each class's teachers' role is brought in line with the group's members, so a student who
        left a class (removed from the group here or at the provider) is out of their teachers'
        reach within a minute, without anyone viewing the roster."""
        admin = self.is_admin()
        service = has_scope(CLASSES_SCOPE, self.parsed_scopes, db=self.db)
        classes = []
        for group in self.db.query(orm.Group).order_by(orm.Group.name):
            if not (admin or self.teaches(group.name)):
                continue
            spec = stored_class(group, self.federation)
            if spec is not None:
                if service:
                    sync_teacher_role(self.db, spec, group, self.log)
                classes.append(spec.to_json())
        self.finish(json.dumps({"classes": classes}))


class ClassHandler(_ClassHandler):
    def _group(self, name: str) -> orm.Group | None:
        return orm.Group.find(self.db, name)

    @api_authenticated
    def get(self, name: str):
        group = self._group(name)
        spec = stored_class(group, self.federation) if group is not None else None
        if spec is None or not (self.is_admin() or self.teaches(name)):
            raise web.HTTPError(404, _("no class {name} that you teach").format(name=repr(name)))
        self.finish(json.dumps(spec.to_json()))

    @api_authenticated
    def put(self, name: str):
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return self.fail(400, _("the body must be a JSON object with the class's settings"))
        if not isinstance(body, dict):
            return self.fail(400, _("the body must be a JSON object with the class's settings"))
        if body.get("name", name) != name:
            return self.fail(400, _("name: the body names {body} but the URL {url}").format(
                body=repr(body.get("name")), url=repr(name)), "name")
        group = self._group(name)
        current = stored_class(group, self.federation) if group is not None else None
        admin = self.is_admin()
        if not admin:
            if current is None or not self.teaches(name):
                raise web.HTTPError(403, _("only an admin may create a class; you do not teach {name}").format(
                    name=repr(name)))
            kept = current.to_json()
            changed = sorted(k for k in body if k != "name" and body[k] != kept.get(k) and k not in TEACHER_FIELDS)
            if changed:
                return self.fail(403, _("{field}: a teacher may change only {fields} of their class; ask an admin").format(
                    field=changed[0], fields=", ".join(sorted(TEACHER_FIELDS))), changed[0])
            body = {**kept, **{k: v for k, v in body.items() if k in TEACHER_FIELDS}}
        try:
            spec = parse_class({**body, "name": name}, self.federation)
        except ClassError as e:
            return self.fail(400, str(e), e.path)
        if admin:  # the admin's own choices are within the caps, widened by any the admin gives
            own = spec.derived_limits()
            spec = replace(spec, limits=own if spec.limits is None else spec.limits.widened(own))
        else:
            beyond = beyond_limits(spec, current.limits or current.derived_limits(), datetime.now(timezone.utc))
            if beyond is not None:
                return self.fail(403, f"{beyond[0]}: {beyond[1]}", beyond[0])
        if spec.provider_groups and not getattr(self.authenticator, "manage_groups", False):
            return self.fail(400, _("provider_groups: this hub does not take groups from the identity provider "
                                    "(manage_groups); list the students instead"), "provider_groups")
        created = group is None
        if created:
            group = orm.Group(name=name)
            self.db.add(group)
        group.properties = {**(group.properties or {}), PROPERTY: spec.to_json()}
        if spec.students is not None:
            group.users = [self._user(n) for n in spec.students]
        role = sync_teacher_role(self.db, spec, group, self.log)
        teachers = [self._user(n) for n in spec.teachers]
        for user in list(role.users):
            if user not in teachers:
                roles.strip_role(self.db, user, spec.role_name, commit=False)
        for user in teachers:
            roles.grant_role(self.db, user, spec.role_name, commit=False)
        self.db.commit()
        self.log.info("Class %s %s by %s: teachers %s, centres %s", name, "created" if created else "updated",
                      self.current_user.name, ", ".join(spec.teachers), ", ".join(c.centre for c in spec.centres))
        self.set_status(201 if created else 200)
        self.finish(json.dumps(spec.to_json()))

    @api_authenticated
    def delete(self, name: str):
        if not self.is_admin():
            raise web.HTTPError(403, _("only an admin may remove a class"))
        group = self._group(name)
        if group is None or PROPERTY not in (group.properties or {}):
            raise web.HTTPError(404, _("no class {name}").format(name=repr(name)))
        group.properties = {k: v for k, v in group.properties.items() if k != PROPERTY}
        role = orm.Role.find(self.db, f"fedhub-teacher-{name}")
        if role is not None:
            self.db.delete(role)
        self.db.commit()
        self.log.info("Class %s removed by %s (the group stays)", name, self.current_user.name)
        self.set_status(204)
        self.finish()

    def _user(self, name: str) -> orm.User:
        """The hub user ``name``, created if new (as JupyterHub's group API does)."""
        user = orm.User.find(self.db, name)
        if user is None:
            user = self.user_from_username(name).orm_user
        return user


class RosterHandler(_ClassHandler):
    @api_authenticated
    def get(self, name: str):
        group = orm.Group.find(self.db, name)
        spec = stored_class(group, self.federation) if group is not None else None
        if spec is None or not (self.is_admin() or self.teaches(name)):
            raise web.HTTPError(404, _("no class {name} that you teach").format(name=repr(name)))
        sync_teacher_role(self.db, spec, group, self.log)  # students who joined at their first login
        students = [self.users[u] for u in sorted(group.users, key=lambda u: u.name) if u.name not in spec.teachers]
        roster = {"class": spec.name, "title": spec.title, "students": [server_summary(u) for u in students]}
        if has_scope(CLASSES_SCOPE, self.parsed_scopes, db=self.db):
            # the class service (materials go to and from these servers): where each one answers
            for entry, user in zip(roster["students"], students):
                entry["server_url"] = _server_url(user, self.proxy.public_url)
            roster["teachers"] = [{"name": n, "server_url": _server_url(self.users[u], self.proxy.public_url) if (u := orm.User.find(
                self.db, n)) is not None else None} for n in spec.teachers]
        self.finish(json.dumps(roster))


# A server the class service writes to is its user's: it may log every header it receives. So
# the token sent there opens only that one server, and only for as long as one call takes.
SERVER_TOKEN_LIFETIME = 60  # seconds, at most


class ServerTokenHandler(_ClassHandler):
    """A token owned by a class's member (student or teacher) that opens only their default
    server and expires within a minute: what the class service sends to that server for a
    hand-out or collection, instead of a token of its own that would open every server."""

    @api_authenticated
    def post(self, name: str):
        if not has_scope(CLASSES_SCOPE, self.parsed_scopes, db=self.db):
            raise web.HTTPError(403, f"only the class service ({CLASSES_SCOPE}) asks for server tokens")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("user"), str):
            return self.fail(400, "user: name the class member whose server is called", "user")
        lifetime = body.get("expires_in", SERVER_TOKEN_LIFETIME)
        if not isinstance(lifetime, int) or not 1 <= lifetime <= SERVER_TOKEN_LIFETIME:
            return self.fail(400, f"expires_in: give whole seconds from 1 to {SERVER_TOKEN_LIFETIME}", "expires_in")
        group = orm.Group.find(self.db, name)
        spec = stored_class(group, self.federation) if group is not None else None
        if spec is None:
            raise web.HTTPError(404, _("no class {name}").format(name=repr(name)))
        member = body["user"]
        orm_user = orm.User.find(self.db, member)
        if orm_user is None or not (member in spec.teachers or orm_user in group.users):
            raise web.HTTPError(404, _("{member} is neither a student nor a teacher of {name}").format(
                member=repr(member), name=name))
        token = orm_user.new_api_token(note=f"fedhub-classes: one call to {member}'s server for class {name}",
                                       scopes=[f"access:servers!server={member}/"], expires_in=lifetime)
        self.set_status(201)
        self.finish(json.dumps({"token": token, "expires_in": lifetime}))


def _server_url(user, public_url: str) -> str | None:
    """Where the class service reaches the user's running default server (None: not running):
    through the proxy, because a server takes TLS clients only of the hub's and the proxy's
    certificates (internal SSL), not a service's."""
    spawner = user.spawners.get("")
    if spawner is None or not spawner.ready or spawner.server is None:
        return None
    public = urlparse(public_url)
    return f"{public.scheme}://{public.netloc}{spawner.server.base_url}"


def _latest_info(job):
    """What the centre's watcher last saw of the job (None: not seen yet)."""
    watcher = getattr(job, "watcher", None) if job is not None and job.job_id else None
    snapshot = watcher.latest if watcher is not None else None
    return snapshot.jobs.get(job.job_id) if snapshot is not None and snapshot.knows(job.job_id) else None


def server_summary(user) -> dict:
    """A student's default server as the class dashboard shows it."""
    spawner = user.spawners.get("")
    entry = {"name": user.name, "state": "stopped", "detail": "", "centre": None, "centre_name": None,
             "since": None, "last_activity": user.last_activity.isoformat() + "Z" if user.last_activity else None}
    if spawner is None:
        return entry
    job = getattr(spawner, "job", None)
    if job is not None:
        entry.update(centre=job.centre.id, centre_name=job.centre.name, job_id=job.job_id or None)
    events = getattr(spawner, "progress_log", None)
    latest = events.events[-1]["message"] if events is not None and events.events else ""
    if spawner.pending == "spawn":
        # Slurm's word for a waiting job, in the teacher's language (the spawn's own messages are
        # in the language of whoever started it)
        info = _latest_info(job)
        if info is not None and info.state == "PENDING":
            entry.update(state="pending", detail=pending_message(job.centre.name, info))
        else:
            entry.update(state="queued", detail=latest)
    elif spawner.pending == "stop":
        entry.update(state="stopping")
    elif spawner.ready:
        started = spawner.orm_spawner.started
        entry.update(state="running", since=started.isoformat() + "Z" if started else None)
    else:
        future = spawner._spawn_future
        if future is not None and future.done() and not future.cancelled() and future.exception() is not None:
            error = future.exception()
            entry.update(state="failed", detail=getattr(error, "jupyterhub_message", None) or str(error))
        entry.update(centre=None, centre_name=None)
    return entry


ROUTES = [(r"/api/fedhub/classes", ClassListHandler), (r"/api/fedhub/classes/([^/]+)", ClassHandler),
          (r"/api/fedhub/classes/([^/]+)/roster", RosterHandler),
          (r"/api/fedhub/classes/([^/]+)/server-token", ServerTokenHandler)]
