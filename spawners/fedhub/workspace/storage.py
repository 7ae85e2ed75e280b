"""Storage is an allocation too: a copy into a centre's workspace that would take the user over
their storage limit there is refused before a byte moves, naming the centre and the amounts.

The figures are those of the quota panel: the federation file's ``accounting.storage_command``
(run centre-wide, as the quota service runs it) and ``storage_limit``. A centre that sets no
limit, or whose command does not answer, refuses nothing (the log says so).
"""

from __future__ import annotations

import logging

from ..quota.accounting import parse_storage
from ..slurm.client import SlurmClient
from ..slurm.commands import SchedulerError, SchedulerUnreachable
from ..units import human_bytes
from .transfer import End, TransferError

log = logging.getLogger("JupyterHub.fedhub.workspace")


class StorageFull(TransferError):
    """A copy that would exceed the user's storage limit at the target."""


def limited(end: End) -> bool:
    """Whether ``end``'s centre limits each user's storage (only then is a copy measured first)."""
    accounting = end.centre.accounting
    return bool(accounting and accounting.storage_limit_mb and accounting.storage_command)


async def room_left(end: End) -> tuple[int, int] | None:
    """(bytes left, limit) of the user's storage at ``end``'s centre; None where it sets no limit."""
    if not limited(end):
        return None
    accounting = end.centre.accounting
    limit = accounting.storage_limit_mb * 1024 * 1024
    out = await SlurmClient(end.centre, timeout=60).query(list(accounting.storage_command))
    return limit - parse_storage(out).get(end.login, 0), limit


async def check_room(target: End, arriving: dict[str, int], there: dict) -> None:
    """Raise StorageFull when the files ``arriving`` ({path: size}) need more than the user has
    left at ``target``; ``there`` is the target's scan (a file replaced is not counted twice)."""
    needed = sum(size - there.get(path, {}).get("size", 0) for path, size in arriving.items())
    if needed <= 0:
        return
    try:
        room = await room_left(target)
    except (SchedulerUnreachable, SchedulerError) as e:
        log.warning("storage at %s could not be measured (%s); the copy goes ahead", target.centre.id, e)
        return
    if room is not None and needed > room[0]:
        left, limit = room
        raise StorageFull(f"{target.centre.name}: this copy needs {human_bytes(needed)} more, but your storage "
                          f"there has {human_bytes(max(left, 0))} left of {human_bytes(limit)}; free some space "
                          "there or copy fewer files")
