"""Jobs the hub still owes a scancel, kept on disk until their centre answers.

JupyterHub clears a spawner's state after stop() whether or not stop() succeeded, so a job
whose controller was down at stop time would be forgotten and keep running (and charging).
Such jobs are written here and retried in the background, across hub restarts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from .federation import Federation
from .scheduler import SchedulerError, SchedulerUnreachable, SlurmClient

log = logging.getLogger("JupyterHub.fedhub.cancellations")  # the hub's handlers and level


class CancelBacklog:
    _instances: dict[str, "CancelBacklog"] = {}

    def __init__(self, path: str, federation: Federation, interval: float):
        self.path = Path(path)
        self.federation = federation
        self.interval = interval
        self.entries: list[dict[str, str]] = self._load()
        self._task: asyncio.Task | None = None

    @classmethod
    def at(cls, path: str, federation: Federation, interval: float = 30.0) -> "CancelBacklog":
        """One backlog per file in this process."""
        key = os.path.abspath(path)
        if key not in cls._instances:
            cls._instances[key] = cls(key, federation, interval)
        return cls._instances[key]

    def _load(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [e for e in data if isinstance(e, dict) and {"centre", "job_id", "user"} <= set(e)]

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1))
        os.replace(tmp, self.path)

    def add(self, centre: str, job_id: str, user: str) -> None:
        entry = {"centre": centre, "job_id": str(job_id), "user": user}
        if entry not in self.entries:
            self.entries.append(entry)
            self._save()
        self.ensure_retrying()

    async def retry_once(self, timeout: float = 20.0) -> int:
        """Try every owed scancel once; return how many are still owed."""
        remaining = []
        for entry in list(self.entries):
            centre = self.federation.centre(entry["centre"])
            if centre is None:
                log.error("Job %s at centre %s cannot be cancelled: the centre is no longer in the "
                          "federation file", entry["job_id"], entry["centre"])
                continue
            try:
                await SlurmClient(centre, timeout=timeout).cancel([entry["job_id"]], entry["user"])
                log.info("Cancelled job %s at %s (owed since its centre did not answer)",
                         entry["job_id"], entry["centre"])
            except SchedulerUnreachable:
                remaining.append(entry)
            except SchedulerError as e:
                log.warning("scancel of job %s at %s: %s", entry["job_id"], entry["centre"], e)
        if remaining != self.entries:
            self.entries = remaining
            self._save()
        return len(remaining)

    def ensure_retrying(self) -> None:
        """Start the background retry loop on the running event loop, once."""
        if not self.entries or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while self.entries:
            await asyncio.sleep(self.interval)
            try:
                await self.retry_once()
            except Exception:
                if asyncio.current_task().cancelling():
                    raise
                log.exception("retrying owed scancels failed")
