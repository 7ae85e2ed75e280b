"""A student's "Start for <class>": the class's settings become the spawn request.

The request runs at one of the class's centres (placement chooses among them, so a class that
one centre cannot hold spreads to the next), with the class's partition, project and
reservation there. A student may ask for less than the class gives, never more, and only
during one of the class's sessions; the walltime ends with the session, because Slurm starts
no job in a reservation that would outlast it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..federation import Federation
from ..logins import usable_login
from ..request import AUTO, OptionError, SpawnRequest
from ..units import format_memory_mb, format_walltime, parse_memory_mb, parse_walltime
from .model import ClassSpec

CLASS_OPTIONS = ("class", "cores", "memory", "walltime")


def class_request(spec: ClassSpec, federation: Federation, hub_user: str, options: dict[str, Any],
                  now: datetime) -> SpawnRequest:
    """The spawn request for ``hub_user``'s server in class ``spec`` at ``now``; OptionError naming
    the field otherwise."""
    extra = sorted(str(k) for k in options if k not in CLASS_OPTIONS)
    if extra:
        raise OptionError(extra[0][:40], f"a start for class {spec.name} uses the class's settings; leave "
                                         f"{extra[0][:40]} out (you may ask for fewer cores, less memory or time)")
    session = spec.session_at(now)
    if session is None:
        upcoming = spec.next_session(now)
        when = (f"the next starts {upcoming.start.astimezone():%Y-%m-%d %H:%M %Z}" if upcoming
                else "it has no session planned")
        raise OptionError("class", f"{spec.title} is not in session now; {when}")
    cores = _at_most("cores", options.get("cores", spec.cores), spec.cores, int, str)
    memory_mb = _at_most("memory", options.get("memory", format_memory_mb(spec.memory_mb)), spec.memory_mb,
                         lambda v: parse_memory_mb(str(v)), format_memory_mb)
    walltime_s = _at_most("walltime", options.get("walltime", format_walltime(spec.walltime_s)), spec.walltime_s,
                          lambda v: parse_walltime(str(v)), format_walltime)
    left_s = int((session.end - now).total_seconds()) // 60 * 60
    if left_s < 60:
        raise OptionError("class", f"{spec.title}'s session ends in less than a minute")
    places = tuple((c.centre, c.partition, c.project, spec.reservation_at(c.centre)) for c in spec.centres
                   if usable_login(federation.centre(c.centre), hub_user) is not None)
    if not places:
        raise OptionError("class", f"you have no login at any of {spec.title}'s centres "
                                   f"({', '.join(c.centre for c in spec.centres)}); ask the teacher")
    return SpawnRequest(centre=AUTO, partition="", login="", cores=cores, memory_mb=memory_mb,
                        walltime_s=min(walltime_s, left_s), klass=spec.name, places=places)


def _at_most(field: str, value: Any, limit: int, parse, show) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = parse(value)
    except (TypeError, ValueError):
        raise OptionError(field, f"{str(value)[:40]!r} is not a valid {field}") from None
    if not 0 < number <= limit:
        raise OptionError(field, f"{show(number)} is more than the class gives; ask for at most {show(limit)}")
    return number
