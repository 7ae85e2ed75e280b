"""The messages of one spawn, in order, for JupyterHub's progress page, and the words for a
pending job (a kernel's wait says the same).

A spawn may pass through placement and several centres (failover); they all append to the
same log, and ``follow()`` streams it to the page until the spawn ends.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from ..i18n import _
from ..slurm.commands import JobInfo


class ProgressLog:
    def __init__(self):
        self.events: list[dict] = []
        self.finished = False
        self._changed = asyncio.Event()

    def emit(self, message: str, progress: int | None = None) -> None:
        event: dict = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self.events.append(event)
        self._changed.set()

    @property
    def last_progress(self) -> int | None:
        """The furthest the bar has gone (a later message without its own step keeps it there)."""
        return max((e["progress"] for e in self.events if "progress" in e), default=None)

    def restart(self) -> None:
        self.events.clear()
        self.finished = False

    def finish(self) -> None:
        self.finished = True
        self._changed.set()

    async def follow(self):
        seen = 0
        while True:
            while seen < len(self.events):
                yield self.events[seen]
                seen += 1
            if self.finished:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 1)
            except asyncio.TimeoutError:
                pass


def pending_message(centre_name: str, info: JobInfo, now: datetime | None = None) -> str:
    """'Pending at Alpha as job 12: waiting for Resources (the nodes it needs are busy); Slurm
    estimates it starts at 16:05 (in about 4 min)', in the current language."""
    text = _("Pending at {centre} as job {job}").format(centre=centre_name, job=info.job_id)
    if info.reason:
        meaning = reason_meaning(info.reason)
        text += (_(": waiting for {reason} ({meaning})") if meaning else _(": waiting for {reason}")).format(
            reason=info.reason, meaning=meaning)
    if info.start_time is not None:
        now = now or datetime.now()
        minutes = max(0, round((info.start_time - now).total_seconds() / 60))
        when = _("now") if minutes == 0 else _("in about {n} min").format(n=minutes)
        text += _("; Slurm estimates it starts at {time} ({when})").format(time=f"{info.start_time:%H:%M}", when=when)
    return text


def reason_meaning(reason: str) -> str:
    """What Slurm's pending reason means for the user, in plain words ("" when FedHub does not know it)."""
    meanings = {
        "Resources": _("the nodes it needs are busy"),
        "Priority": _("jobs with a higher priority are ahead of it"),
        "Reservation": _("it waits for its reservation to begin"),
        "BeginTime": _("it was asked to start later"),
        "Dependency": _("it waits for another job"),
        "ReqNodeNotAvail": _("the nodes it needs are down or reserved"),
        "PartitionTimeLimit": _("its walltime is over the partition's limit"),
        "QOSMaxJobsPerUserLimit": _("you already run as many jobs as you may there"),
        "AssocMaxJobsLimit": _("you already run as many jobs as you may there"),
        "AssocGrpCPUMinutesLimit": _("the allocation's core-hours are used up"),
        "AssocGrpBillingMinutes": _("the allocation's core-hours are used up"),
        "JobHeldUser": _("it is held; release it with scontrol release"),
        "JobHeldAdmin": _("the centre's operators hold it"),
    }
    return meanings.get(reason.split(",")[0].strip(), "")
