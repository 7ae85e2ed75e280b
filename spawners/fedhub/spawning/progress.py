"""The messages of one spawn, in order, for JupyterHub's progress page.

A spawn may pass through placement and several centres (failover); they all append to the
same log, and ``follow()`` streams it to the page until the spawn ends.
"""

from __future__ import annotations

import asyncio


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
