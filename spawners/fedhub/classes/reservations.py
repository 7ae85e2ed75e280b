"""A class's Slurm reservations: made by the hub for a session at a local centre, or made by the
centre and named in the class; either way the dashboard and the spawn form say whether it is
active.

A reservation the hub makes is called ``fedhub-<class>``, starts and ends with the session, holds
the class's size in cores or nodes of the class's partition, and admits the class's logins there
(or its project's account). Slurm needs an operator to make one, which the hub is only where it
runs Slurm's commands itself (``scheduler: local``); the class model refuses ``create`` elsewhere.
Every value reaching scontrol is checked against Slurm's name rules first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from ..federation import LOGIN_RE, SLURM_NAME_RE
from ..slurm.commands import SchedulerError, SchedulerUnreachable
from .model import ClassCentre, ClassSpec, Session

log = logging.getLogger("fedhub.classes")
SLURM_TIME = "%Y-%m-%dT%H:%M:%S"


def _name(value: str, what: str, pattern=SLURM_NAME_RE) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def _local(when: datetime) -> str:
    """Slurm reads times without a zone as the controller's local time (the hub's, at a local centre)."""
    return when.astimezone().strftime(SLURM_TIME)


def create_argv(name: str, session: Session, place: ClassCentre, logins: list[str]) -> list[str]:
    argv = ["scontrol", "create", "reservation", f"ReservationName={_name(name, 'reservation')}",
            f"StartTime={_local(session.start)}", f"EndTime={_local(session.end)}",
            f"PartitionName={_name(place.partition, 'partition')}"]
    argv.append(f"CoreCnt={int(place.reserve_cores)}" if place.reserve_cores else f"NodeCnt={int(place.reserve_nodes)}")
    argv += _who(place, logins)
    return argv + ["Flags=IGNORE_JOBS"]


def update_argv(name: str, changes: list[str]) -> list[str]:
    return ["scontrol", "update", f"ReservationName={_name(name, 'reservation')}", *changes]


def changes_to(fields: dict[str, str], session: Session, place: ClassCentre, logins: list[str],
               now: datetime) -> list[str]:
    """What Slurm must change in the reservation it shows (``fields``) to match ``session``: only
    what differs. A reservation that has begun keeps its start (Slurm refuses to move it: a session
    that began before the reservation was made starts it when it is made); its end, users and
    accounts may still change."""
    changes = []
    if fields.get("State", "").upper() != "ACTIVE":
        if session.start > now and fields.get("StartTime") != _local(session.start):
            changes.append(f"StartTime={_local(session.start)}")
        elif session.start <= now:
            changes.append("StartTime=now")  # moved to a start that has come: it begins now
    if fields.get("EndTime") != _local(session.end):
        changes.append(f"EndTime={_local(session.end)}")
    if place.project:
        if fields.get("Accounts") != place.project:
            changes += _who(place, logins)
    elif set(fields.get("Users", "").split(",")) != set(logins):
        changes += _who(place, logins)
    return changes


def _who(place: ClassCentre, logins: list[str]) -> list[str]:
    """The class's project's account if it has one there, else its logins."""
    if place.project:
        return [f"Accounts={_name(place.project, 'account')}"]
    if not logins:
        raise ValueError("the class has nobody with a login there yet")
    return [f"Users={','.join(_name(login, 'login', LOGIN_RE) for login in sorted(set(logins)))}"]


def admit_argv(name: str, login: str) -> list[str]:
    return ["scontrol", "update", f"ReservationName={_name(name, 'reservation')}",
            f"Users+={_name(login, 'login', LOGIN_RE)}"]


async def admit(client, name: str, login: str, log=log) -> None:
    """Add a login to the hub's reservation before its job is submitted (the class's members may
    have grown since the reservation was made); Slurm's refusal is logged, and sbatch then says why."""
    try:
        result = await client.command(admit_argv(name, login), None)
    except SchedulerUnreachable as e:
        log.warning("Could not add %s to reservation %s: %s", login, name, e)
        return
    words = (result.stderr + result.stdout).strip()
    if result.returncode != 0 and "duplicate" not in words.lower():
        log.warning("Could not add %s to reservation %s at %s: %s", login, name, client.centre.id, words[:300])


def delete_argv(name: str) -> list[str]:
    return ["scontrol", "delete", f"ReservationName={_name(name, 'reservation')}"]


def show_argv(name: str) -> list[str]:
    return ["scontrol", "show", "reservation", _name(name, "reservation"), "--oneliner"]


def parse_show(stdout: str) -> dict[str, str]:
    """``scontrol show reservation --oneliner``: its Key=Value fields ({} if there is none)."""
    fields = {}
    for word in stdout.split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    return fields


@dataclass
class ReservationView:
    """What the dashboard and the form say about one reservation, in words a teacher can act on
    (Slurm's own words go to the operator's log)."""
    name: str
    centre: str
    centre_name: str
    state: str  # "active", "inactive" (made, not begun), "missing", "unknown" (no answer), "not made"
    made_by_hub: bool
    until: str = ""  # its end as Slurm keeps it (the controller's local time), when it has one
    note: str = ""   # what went wrong and what it means for the class, when something did

    def as_json(self) -> dict:
        return asdict(self)


REFUSED_CHANGE = "could not be changed: the centre refused; your students can still start in it"
REFUSED_MAKING = "could not be made: the centre refused; the hub's log has Slurm's words for its operator"


async def read(client, name: str) -> tuple[str, dict[str, str]]:
    """Slurm's word on a reservation (active, inactive, missing, or unknown: no answer) and the
    fields it shows."""
    try:
        result = await client.command(show_argv(name), None)
    except SchedulerUnreachable:
        return "unknown", {}
    if result.returncode != 0:
        return ("missing" if "not found" in (result.stderr + result.stdout).lower() else "unknown"), {}
    fields = parse_show(result.stdout)
    return fields.get("State", "").lower() or "unknown", fields


async def look(client, name: str) -> str:
    """Slurm's word on a reservation: active, inactive, missing, or unknown (no answer)."""
    return (await read(client, name))[0]


async def keep(client, spec: ClassSpec, place: ClassCentre, session: Session | None, logins: list[str],
               now: datetime | None = None) -> tuple[str, dict[str, str], str]:
    """Make, change or end the hub's reservation for ``spec`` at ``place`` to match ``session``
    (None: no session now or within a day, so none should exist), sending Slurm only what
    differs. Answers its state after, its fields, and a note when Slurm refused a change to a
    reservation that stays in place (its words are logged for the operator)."""
    name = spec.reservation_at(place.centre)
    now = now or datetime.now().astimezone()
    state, fields = await read(client, name)
    if state == "unknown":
        return state, fields, ""
    if session is None:
        if fields:
            await _run(client, delete_argv(name))
            log.info("Reservation %s at %s removed: class %s has no session now", name, place.centre, spec.name)
        return "none planned", {}, ""
    if not fields:
        await _run(client, create_argv(name, session, place, logins))
        log.info("Reservation %s at %s made for class %s: %s to %s, %s", name, place.centre, spec.name,
                 _local(session.start), _local(session.end),
                 f"{place.reserve_cores} cores" if place.reserve_cores else f"{place.reserve_nodes} nodes")
    elif changes := changes_to(fields, session, place, logins, now):
        try:
            await _run(client, update_argv(name, changes))
        except SchedulerError as e:  # it stays as it was, and the class goes on in it
            log.warning("Reservation %s at %s for class %s not changed (%s): %s", name, place.centre, spec.name,
                        " ".join(changes), e)
            state, fields = await read(client, name)
            return state, fields, REFUSED_CHANGE
        log.info("Reservation %s at %s changed for class %s: %s", name, place.centre, spec.name, " ".join(changes))
    else:
        return state, fields, ""
    state, fields = await read(client, name)
    return state, fields, ""


async def _run(client, argv: list[str]) -> None:
    result = await client.command(argv, None)
    if result.returncode != 0:
        raise SchedulerError(f"{client.centre.id}: {' '.join(argv[:3])} failed: {result.stderr.strip()[:300]}")


class ReservationCache:
    """Reservation states read at most every ``max_age`` seconds per (centre, name)."""

    def __init__(self, max_age: float = 30.0):
        self.max_age = max_age
        self._seen: dict[tuple[str, str], tuple[float, str]] = {}

    async def state(self, client, name: str) -> str:
        key = (client.centre.id, name)
        kept = self._seen.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.max_age:
            return kept[1]
        state = await look(client, name)
        self._seen[key] = (time.monotonic(), state)
        return state

    def note(self, centre_id: str, name: str, state: str) -> None:
        self._seen[(centre_id, name)] = (time.monotonic(), state)
