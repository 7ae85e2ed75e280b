"""A class: a JupyterHub group with FedHub's settings for it, validated like the federation file.

Its teachers and its students: listed here, or (``provider_groups: true``, said by an admin)
the identity provider's group of the class's name;
the centres it runs at, each with a partition and optionally a project to charge and a Slurm
reservation (one the centre made, named here, or one the hub creates for the session: ``cores``
or ``nodes``); the resources every student's server gets; the session times; and whether its
teachers may open their students' labs. The same checks serve the class file and the REST API,
and every error names the field (``classes[0].centres[1].partition``) and the fix.

Pure: no I/O but reading the class file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from ..federation import SLURM_NAME_RE, FieldError, FieldReader, Federation
from ..units import format_memory_mb, format_walltime, parse_memory_mb, parse_walltime
from ..i18n import _

# the group's name; also in the teachers' role (fedhub-teacher-<name>) and a created reservation
CLASS_NAME_RE = re.compile(r"[a-z][a-z0-9-]{1,46}")
HUB_USER_RE = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
PROPERTY = "fedhub_class"  # the group property that holds a class's settings
MAX_SESSION = timedelta(hours=24)
DEFAULT_HOURS_PER_WEEK = 40.0  # caps a teacher's sessions where the admin names none
DEFAULT_DAYS_AHEAD = 180


class ClassError(FieldError):
    """A class definition that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class ClassCentre:
    centre: str
    partition: str
    project: str | None = None  # the class's charge account there (the reservation's Accounts)
    reservation: str | None = None  # a reservation the centre created for the class
    reserve_cores: int = 0  # or: the hub creates one of this many cores for each session...
    reserve_nodes: int = 0  # ...or of this many nodes

    @property
    def creates_reservation(self) -> bool:
        return bool(self.reserve_cores or self.reserve_nodes)


@dataclass(frozen=True)
class PlaceLimit:
    """Where an admin lets the class's teachers run it: one centre, its partitions, the projects
    the class may charge there and the centre-made reservations it may use."""
    centre: str
    partitions: tuple[str, ...]
    projects: tuple[str, ...] = ()
    reservations: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClassLimits:
    """The admin's caps on what the class's teachers may change: their centres, partitions,
    projects and reservations; the size of a reservation the hub makes; the hours of sessions in
    any seven days; how far ahead a session may start."""
    places: tuple[PlaceLimit, ...]
    reserve_cores: int = 0
    reserve_nodes: int = 0
    hours_per_week: float = DEFAULT_HOURS_PER_WEEK
    days_ahead: int = DEFAULT_DAYS_AHEAD

    def place(self, centre_id: str) -> PlaceLimit | None:
        return next((p for p in self.places if p.centre == centre_id), None)

    def widened(self, other: "ClassLimits") -> "ClassLimits":
        """Caps that allow what either allows (an admin's own definition always fits its caps)."""
        places = {p.centre: p for p in self.places}
        for o in other.places:
            mine = places.get(o.centre)
            places[o.centre] = o if mine is None else PlaceLimit(
                o.centre, tuple(dict.fromkeys(mine.partitions + o.partitions)),
                tuple(dict.fromkeys(mine.projects + o.projects)),
                tuple(dict.fromkeys(mine.reservations + o.reservations)))
        return ClassLimits(tuple(places.values()), max(self.reserve_cores, other.reserve_cores),
                           max(self.reserve_nodes, other.reserve_nodes),
                           max(self.hours_per_week, other.hours_per_week), max(self.days_ahead, other.days_ahead))

    def to_json(self) -> dict:
        return {"centres": {p.centre: {"partitions": list(p.partitions), "projects": list(p.projects),
                                       "reservations": list(p.reservations)} for p in self.places},
                "reservation": {"cores": self.reserve_cores, "nodes": self.reserve_nodes},
                "hours_per_week": self.hours_per_week, "days_ahead": self.days_ahead}


@dataclass(frozen=True)
class Session:
    start: datetime  # aware
    end: datetime

    def holds(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class ClassSpec:
    name: str
    title: str
    teachers: tuple[str, ...]
    students: tuple[str, ...] | None  # None: membership comes from the identity provider's groups
    centres: tuple[ClassCentre, ...]
    cores: int
    memory_mb: int
    walltime_s: int
    sessions: tuple[Session, ...] = ()
    teachers_open_labs: bool = False
    limits: ClassLimits | None = None  # the admin's caps on teachers' changes (None: not set yet)
    provider_groups: bool = False  # students are the provider's group of the class's name (said, never assumed)

    @property
    def role_name(self) -> str:
        return f"fedhub-teacher-{self.name}"

    def reservation_at(self, centre_id: str) -> str | None:
        """The reservation the class's jobs at ``centre_id`` use (None: none)."""
        for c in self.centres:
            if c.centre == centre_id:
                return c.reservation or (f"fedhub-{self.name}" if c.creates_reservation else None)
        return None

    def centre(self, centre_id: str) -> ClassCentre | None:
        return next((c for c in self.centres if c.centre == centre_id), None)

    def session_at(self, now: datetime) -> Session | None:
        return next((s for s in self.sessions if s.holds(now)), None)

    def next_session(self, now: datetime) -> Session | None:
        return min((s for s in self.sessions if s.start > now), key=lambda s: s.start, default=None)

    def to_json(self) -> dict:
        """The canonical form: the group property, the API's answer; ``parse_class`` takes it back."""
        centres = []
        for c in self.centres:
            entry: dict[str, Any] = {"centre": c.centre, "partition": c.partition}
            if c.project:
                entry["project"] = c.project
            if c.reservation:
                entry["reservation"] = c.reservation
            elif c.reserve_cores:
                entry["reservation"] = {"create": {"cores": c.reserve_cores}}
            elif c.reserve_nodes:
                entry["reservation"] = {"create": {"nodes": c.reserve_nodes}}
            centres.append(entry)
        out: dict[str, Any] = {
            "name": self.name, "title": self.title, "teachers": list(self.teachers), "centres": centres,
            "resources": {"cores": self.cores, "memory": format_memory_mb(self.memory_mb),
                          "walltime": format_walltime(self.walltime_s)},
            "sessions": [{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in self.sessions],
            "teachers_open_labs": self.teachers_open_labs,
        }
        if self.students is not None:
            out["students"] = list(self.students)
        if self.provider_groups:
            out["provider_groups"] = True
        if self.limits is not None:
            out["limits"] = self.limits.to_json()
        return out

    def derived_limits(self) -> ClassLimits:
        """The caps an admin's definition gives when it names none: its own centres, partitions,
        projects and reservations, and reservations no larger than its own."""
        return ClassLimits(
            places=tuple(PlaceLimit(c.centre, (c.partition,), (c.project,) if c.project else (),
                                    (c.reservation,) if c.reservation else ()) for c in self.centres),
            reserve_cores=max((c.reserve_cores for c in self.centres), default=0),
            reserve_nodes=max((c.reserve_nodes for c in self.centres), default=0),
            hours_per_week=max([DEFAULT_HOURS_PER_WEEK, *(week_hours(self.sessions, s) for s in self.sessions)]),
            days_ahead=max([DEFAULT_DAYS_AHEAD, *((s.start - datetime.now(timezone.utc)).days + 1
                                                  for s in self.sessions)]))


FIELDS = {"name", "title", "teachers", "students", "centres", "resources", "sessions", "teachers_open_labs",
          "limits", "provider_groups"}


def week_hours(sessions: tuple[Session, ...], first: Session) -> float:
    """Hours of ``sessions`` in the seven days from ``first``'s start."""
    week_end = first.start + timedelta(days=7)
    return sum((min(o.end, week_end) - max(o.start, first.start)).total_seconds() / 3600
               for o in sessions if o.end > first.start and o.start < week_end)


def beyond_limits(spec: ClassSpec, limits: ClassLimits, now: datetime) -> tuple[str, str] | None:
    """(field, message) for the first thing a teacher's version of a class asks beyond the
    admin's caps, else None. The message names the cap and says whom to ask."""
    ask = _("; ask an admin to raise the class's limits")
    for i, c in enumerate(spec.centres):
        here = f"centres[{i}]"
        place = limits.place(c.centre)
        if place is None:
            allowed = ", ".join(p.centre for p in limits.places)
            return f"{here}.centre", _("{centre} is not one of the centres this class may use ({allowed})").format(
                centre=repr(c.centre), allowed=allowed) + ask
        if c.partition not in place.partitions:
            return f"{here}.partition", _("{partition} is not a partition this class may use at {centre} ({allowed})").format(
                partition=repr(c.partition), centre=c.centre, allowed=", ".join(place.partitions)) + ask
        if c.project is not None and c.project not in place.projects:
            return f"{here}.project", _("{project} is not a project this class may charge at {centre} ({allowed})").format(
                project=repr(c.project), centre=c.centre, allowed=", ".join(place.projects) or _("none")) + ask
        if c.project is None and place.projects:
            return f"{here}.project", _("the class charges one of {projects} at {centre}; name it").format(
                projects=", ".join(place.projects), centre=c.centre)
        if c.reservation is not None and c.reservation not in place.reservations:
            return f"{here}.reservation", _("{reservation} is not a reservation this class may use at {centre} "
                                            "({allowed})").format(reservation=repr(c.reservation), centre=c.centre,
                                                                  allowed=", ".join(place.reservations) or _("none")) + ask
        if c.reserve_cores > limits.reserve_cores:
            return f"{here}.reservation.create.cores", _("{cores} cores is more than this class may reserve ({most})").format(
                cores=c.reserve_cores, most=limits.reserve_cores) + ask
        if c.reserve_nodes > limits.reserve_nodes:
            return f"{here}.reservation.create.nodes", _("{nodes} nodes is more than this class may reserve ({most})").format(
                nodes=c.reserve_nodes, most=limits.reserve_nodes) + ask
    horizon = now + timedelta(days=limits.days_ahead)
    for i, session in enumerate(spec.sessions):
        if session.start > horizon:
            return f"sessions[{i}].start", _("starts more than {days} days ahead, the most this class may plan").format(
                days=limits.days_ahead) + ask
        hours = week_hours(spec.sessions, session)
        if hours > limits.hours_per_week + 1e-9:
            return f"sessions[{i}]", _("the sessions in the 7 days from this one last {hours} hours, more than the "
                                       "{most} hours a week this class may have").format(
                hours=f"{hours:g}", most=f"{limits.hours_per_week:g}") + ask
    return None


def parse_class(raw: Any, federation: Federation, path: str = "(top level)", source: str | None = None) -> ClassSpec:
    """Validate one class definition (a mapping) against the federation; raise ClassError."""
    r = FieldReader(source, ClassError)
    r.mapping(raw, path, FIELDS)
    at = (lambda key: key) if path == "(top level)" else (lambda key: f"{path}.{key}")
    name = r.text(r.require(raw, "name", path), at("name"), CLASS_NAME_RE,
                  "use 2-47 lower-case letters, digits and '-', starting with a letter (it names the group)")
    title = raw.get("title", name)
    if not isinstance(title, str) or len(title) > 200:
        r.fail(at("title"), "must be text of at most 200 characters")
    teachers = _users(r, r.require(raw, "teachers", path), at("teachers"), required=True)
    students = None if raw.get("students") is None else _users(r, raw["students"], at("students"))
    provider_groups = raw.get("provider_groups", False)
    if not isinstance(provider_groups, bool):
        r.fail(at("provider_groups"), "must be true or false")
    if students is None and not provider_groups:
        r.fail(at("students"), "list the class's students, or set provider_groups: true to take them from the "
                               f"identity provider's group {name!r}")
    if students is not None and provider_groups:
        r.fail(at("provider_groups"), "a class takes its students from its students list or from the provider's "
                                      "group, not both; leave one out")
    centres = _centres(r, r.require(raw, "centres", path), at("centres"), federation)
    cores, memory_mb, walltime_s = _resources(r, raw.get("resources") or {}, at("resources"), centres, federation)
    sessions = _sessions(r, raw.get("sessions") or [], at("sessions"))
    open_labs = raw.get("teachers_open_labs", False)
    if not isinstance(open_labs, bool):
        r.fail(at("teachers_open_labs"), "must be true or false")
    limits = None if raw.get("limits") is None else _limits(r, raw["limits"], at("limits"), federation)
    return ClassSpec(name=name, title=title, teachers=teachers, students=students, centres=centres, cores=cores,
                     memory_mb=memory_mb, walltime_s=walltime_s, sessions=sessions, teachers_open_labs=open_labs,
                     limits=limits, provider_groups=provider_groups)


def load_class_file(path: str | Path, federation: Federation) -> list[ClassSpec]:
    """The classes in a class file (``classes: [...]``); raise ClassError naming the field."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ClassError("(file)", f"cannot be read ({e.strerror})", source) from None
    except yaml.YAMLError as e:
        raise ClassError("(file)", f"is not valid YAML ({e})", source) from None
    r = FieldReader(source, ClassError)
    r.mapping(raw if raw is not None else {}, "(top level)", {"classes"})
    entries = (raw or {}).get("classes") or []
    if not isinstance(entries, list):
        r.fail("classes", "must be a list of classes")
    classes = [parse_class(entry, federation, f"classes[{i}]", source) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for i, spec in enumerate(classes):
        if spec.name in seen:
            r.fail(f"classes[{i}].name", f"{spec.name!r} is defined twice; class names are unique")
        seen.add(spec.name)
    return classes


def _users(r: FieldReader, value: Any, path: str, required: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (required and not value):
        r.fail(path, "must be a list of hub user names" + (" (at least one)" if required else ""))
    for i, name in enumerate(value):
        r.text(name, f"{path}[{i}]", HUB_USER_RE, "use a hub user name")
    return tuple(dict.fromkeys(value))


def _centres(r: FieldReader, value: Any, path: str, federation: Federation) -> tuple[ClassCentre, ...]:
    if not isinstance(value, list) or not value:
        r.fail(path, f"must list the centres the class runs at, e.g. [{federation.centre_ids[0]}]")
    out: list[ClassCentre] = []
    for i, entry in enumerate(value):
        here = f"{path}[{i}]"
        if isinstance(entry, str):
            entry = {"centre": entry}
        r.mapping(entry, here, {"centre", "partition", "project", "reservation"})
        cid = r.require(entry, "centre", here)
        if cid not in federation.centre_ids:
            r.fail(f"{here}.centre", f"{cid!r} is not a centre of the federation; use one of: "
                                     f"{', '.join(federation.centre_ids)}")
        if any(c.centre == cid for c in out):
            r.fail(f"{here}.centre", f"{cid!r} is listed twice")
        centre = federation.centre(cid)
        partition = entry.get("partition") or centre.partitions[0].name
        if partition not in [p.name for p in centre.partitions]:
            r.fail(f"{here}.partition", f"{centre.name} has no partition {partition!r}; use one of: "
                                        f"{', '.join(p.name for p in centre.partitions)}")
        project = entry.get("project")
        if project is not None:
            r.text(project, f"{here}.project", SLURM_NAME_RE, "use the Slurm account the class charges")
        reservation, cores, nodes = _reservation(r, entry.get("reservation"), f"{here}.reservation")
        if (cores or nodes) and centre.scheduler.kind != "local":
            r.fail(f"{here}.reservation.create", f"the hub can make reservations only where it runs Slurm's commands "
                                                 f"itself (scheduler: local); ask {centre.name} to make one and "
                                                 "name it here (reservation: <name>)")
        out.append(ClassCentre(centre=cid, partition=partition, project=project, reservation=reservation,
                               reserve_cores=cores, reserve_nodes=nodes))
    return tuple(out)


def _reservation(r: FieldReader, value: Any, path: str) -> tuple[str | None, int, int]:
    """A reservation's name (made by the centre), or ``{create: {cores: N}}`` / ``{create: {nodes: N}}``."""
    if value is None:
        return None, 0, 0
    if isinstance(value, str):
        return r.text(value, path, SLURM_NAME_RE, "use the name of the reservation the centre created"), 0, 0
    r.mapping(value, path, {"create"})
    size = r.mapping(r.require(value, "create", path), f"{path}.create", {"cores", "nodes"})
    if len(size) != 1:
        r.fail(f"{path}.create", "give its size as cores: N or nodes: N")
    cores = r.positive_int(size["cores"], f"{path}.create.cores", 100_000) if "cores" in size else 0
    nodes = r.positive_int(size["nodes"], f"{path}.create.nodes", 10_000) if "nodes" in size else 0
    return None, cores, nodes


def _resources(r: FieldReader, value: Any, path: str, centres: tuple[ClassCentre, ...],
               federation: Federation) -> tuple[int, int, int]:
    r.mapping(value, path, {"cores", "memory", "walltime"})
    cores = r.positive_int(value.get("cores", 1), f"{path}.cores", 1024)
    try:
        memory_mb = parse_memory_mb(str(value.get("memory", "1G")))
    except ValueError as e:
        r.fail(f"{path}.memory", str(e))
    try:
        walltime_s = parse_walltime(str(value.get("walltime", "01:00:00")))
    except ValueError as e:
        r.fail(f"{path}.walltime", str(e))
    for c in centres:  # every student's server must fit at each of the class's centres
        p = federation.centre(c.centre).partition(c.partition)
        where = f"partition {p.name!r} at {federation.centre(c.centre).name}"
        if cores > p.max_cores:
            r.fail(f"{path}.cores", f"{cores} is more than {where} allows ({p.max_cores})")
        if memory_mb > p.max_memory_mb:
            r.fail(f"{path}.memory", f"{format_memory_mb(memory_mb)} is more than {where} allows "
                                     f"({format_memory_mb(p.max_memory_mb)})")
        if walltime_s > p.max_walltime_s:
            r.fail(f"{path}.walltime", f"{format_walltime(walltime_s)} is more than {where} allows "
                                       f"({format_walltime(p.max_walltime_s)})")
    return cores, memory_mb, walltime_s


def _limits(r: FieldReader, value: Any, path: str, federation: Federation) -> ClassLimits:
    """``limits: {centres: {<centre>: {partitions, projects, reservations}}, reservation: {cores,
    nodes}, hours_per_week, days_ahead}``: an admin's caps on the class's teachers."""
    r.mapping(value, path, {"centres", "reservation", "hours_per_week", "days_ahead"})
    centres = r.mapping(r.require(value, "centres", path), f"{path}.centres", set(federation.centre_ids))
    places = []
    for cid, entry in centres.items():
        here = f"{path}.centres.{cid}"
        r.mapping(entry if entry is not None else {}, here, {"partitions", "projects", "reservations"})
        entry = entry or {}
        names = [p.name for p in federation.centre(cid).partitions]
        partitions = entry.get("partitions", names)
        if not isinstance(partitions, list) or not partitions or any(p not in names for p in partitions):
            r.fail(f"{here}.partitions", f"list partitions of {federation.centre(cid).name}: {', '.join(names)}")
        lists = []
        for key, fix in (("projects", "Slurm accounts the class may charge"), ("reservations", "reservations the centre made")):
            items = entry.get(key, [])
            if not isinstance(items, list):
                r.fail(f"{here}.{key}", f"must be a list of {fix}")
            for i, item in enumerate(items):
                r.text(item, f"{here}.{key}[{i}]", SLURM_NAME_RE, f"use one of the {fix}")
            lists.append(tuple(items))
        places.append(PlaceLimit(cid, tuple(partitions), *lists))
    size = r.mapping(value.get("reservation") or {}, f"{path}.reservation", {"cores", "nodes"})
    cores = r.positive_int(size["cores"], f"{path}.reservation.cores", 100_000) if size.get("cores") else 0
    nodes = r.positive_int(size["nodes"], f"{path}.reservation.nodes", 10_000) if size.get("nodes") else 0
    hours = value.get("hours_per_week", DEFAULT_HOURS_PER_WEEK)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 <= hours <= 168:
        r.fail(f"{path}.hours_per_week", "give the hours of sessions a week, 0 to 168")
    days = r.positive_int(value.get("days_ahead", DEFAULT_DAYS_AHEAD), f"{path}.days_ahead", 3660)
    return ClassLimits(tuple(places), cores, nodes, float(hours), days)


def _when(r: FieldReader, value: Any, path: str) -> datetime:
    """An ISO date and time; without an offset, the hub's local time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            r.fail(path, f"{value!r} is not a date and time; write e.g. 2026-12-02T09:00+01:00")
    if not isinstance(value, datetime):
        r.fail(path, "must be a date and time such as 2026-12-02T09:00+01:00")
    return value if value.tzinfo is not None else value.astimezone()


def _sessions(r: FieldReader, value: Any, path: str) -> tuple[Session, ...]:
    if not isinstance(value, list):
        r.fail(path, "must be a list of {start, end}")
    out = []
    for i, entry in enumerate(value):
        here = f"{path}[{i}]"
        r.mapping(entry, here, {"start", "end"})
        start = _when(r, r.require(entry, "start", here), f"{here}.start")
        end = _when(r, r.require(entry, "end", here), f"{here}.end")
        if not start < end <= start + MAX_SESSION:
            r.fail(f"{here}.end", "must be after the start, and a session lasts at most 24 hours")
        out.append(Session(start.astimezone(timezone.utc), end.astimezone(timezone.utc)))
    return tuple(sorted(out, key=lambda s: s.start))
