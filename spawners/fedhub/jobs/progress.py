"""The messages of one spawn, in order, for JupyterHub's progress page, and the words for a
pending job (a kernel's wait says the same).

A spawn may pass through placement and several centres (failover); they all append to the
same log, and ``follow()`` streams it to the page until the spawn ends.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

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
    """'Pending at Alpha as job 12: waiting for Resources; Slurm estimates it starts at 16:05 (in 4 min)'."""
    text = f"Pending at {centre_name} as job {info.job_id}"
    if info.reason:
        text += f": waiting for {info.reason}"
    if info.start_time is not None:
        now = now or datetime.now()
        minutes = max(0, round((info.start_time - now).total_seconds() / 60))
        when = "now" if minutes == 0 else f"in {minutes} min"
        text += f"; Slurm estimates it starts at {info.start_time:%H:%M} ({when})"
    return text
