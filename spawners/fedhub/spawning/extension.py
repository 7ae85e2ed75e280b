"""Extend a running server's job where its centre allows it.

Only a centre's Slurm operators may raise a job's time limit (a user may only lower it), so the
federation file says, per centre, whether the hub may (``sessions.extend``: by how much in all;
the hub then runs ``scontrol update JobId=<id> TimeLimit=+<minutes>`` as the centre's operator
account: itself at a local centre, the query login over ssh). How much a job was already given
is read from Slurm itself (its limit, end minus start, against the walltime the user asked), so
nothing is kept and an operator's own change counts too.
"""

from __future__ import annotations

from ..slurm.commands import SchedulerUnreachable, slurm_message
from ..units import format_walltime
from ..i18n import _


class ExtendRefused(ValueError):
    """Why a job cannot be extended (the message names the field and what is possible)."""

    def __init__(self, field: str, message: str, status: int = 409):
        self.field, self.status = field, status
        super().__init__(message)


def extendable_s(spawner, info) -> int:
    """Seconds the hub may still add to the server's job (0: none, or the centre does not allow it)."""
    allowed = spawner.job.centre.sessions.extend_s if spawner.job is not None else 0
    if not allowed or info is None or not info.is_running or not info.start_time or not info.end_time \
            or spawner.request is None:
        return 0
    given = (info.end_time - info.start_time).total_seconds() - spawner.request.walltime_s
    return max(0, int(allowed - max(0, given)))


async def extend(spawner, seconds: int | None) -> int:
    """Raise the job's limit by ``seconds`` (the centre's step when None); answers the seconds added."""
    centre = spawner.job.centre
    if not centre.sessions.extend_s:
        raise ExtendRefused("centre", _("{centre} does not let FedHub extend jobs; continue at another centre instead "
                                        "(POST .../server/continue)").format(centre=centre.name))
    seen = await spawner.job.observe()
    left = extendable_s(spawner, seen.info if seen.answered else None)
    wanted = centre.sessions.extend_step_s if seconds is None else seconds
    if wanted < 60 or wanted % 60:
        raise ExtendRefused("minutes", _("give whole minutes, at least 1"), 400)
    if wanted > left:
        raise ExtendRefused("minutes", (_("{centre} allows {left} more for this job ({total} in all)") if left else
                                        _("this job was already extended by all {centre} allows ({total}); continue at "
                                          "another centre instead")).format(
            centre=centre.name, left=format_walltime(left), total=format_walltime(centre.sessions.extend_s)))
    argv = ["scontrol", "update", f"JobId={int(spawner.job.job_id)}", f"TimeLimit=+{wanted // 60}"]
    try:
        result = await spawner.job.client.command(argv, None)
    except SchedulerUnreachable:
        raise ExtendRefused("centre", _("{centre} is not answering; try again in a minute").format(centre=centre.name),
                            503) from None
    if result.returncode != 0:
        spawner.log.error("%s could not extend job %s: %s", spawner._where, spawner.job.job_id,
                          slurm_message(result.stderr))
        raise ExtendRefused("centre", _("{centre} refused to extend the job (its operators can see why in the hub's log); "
                                        "continue at another centre instead").format(centre=centre.name), 502)
    spawner.log.info("%s extended job %s by %d min", spawner._where, spawner.job.job_id, wanted // 60)
    await spawner.job.observe()  # the next look shows the new end
    return wanted
