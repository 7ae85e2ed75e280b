"""scancels the hub still owes, kept on disk until their centre answers.

JupyterHub forgets a server once stop() returns, whether or not its job could be cancelled,
so a job whose controller was down at stop time would keep running (and charging). Such jobs
are written here and retried in the background, across hub restarts. So are submissions whose
answer was lost: the retry looks for the job by its submission tag and cancels it.

Rules: nothing owed is ever dropped (entries added while a retry runs are kept); an entry that
can never succeed (its centre left the federation, its login is refused) is reported and set
aside in ``owed-cancels.set-aside.json``, without holding up the others; a file of the wrong
shape is moved aside, not trusted. The file is private (0600), in the hub's state directory,
and replaced atomically and durably (fsync of the file and its directory).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

from .. import runtime
from ..federation import Federation
from ..statedir import ensure_state_dir, write_private_json
from .client import SlurmClient
from .commands import SchedulerError, SchedulerUnreachable
from .owner import parse_comment
from .routes import LoginRefused

log = logging.getLogger("JupyterHub.fedhub.cancellations")  # the hub's handlers and level

FILE_NAME = "owed-cancels.json"
SET_ASIDE_NAME = "owed-cancels.set-aside.json"
_REQUIRED = {"centre", "login"}


def _valid(entry) -> bool:
    return isinstance(entry, dict) and _REQUIRED <= set(entry) and (
        bool(entry.get("job_id")) or bool(entry.get("submission") and entry.get("job_name")))


class CancelBacklog:

    def __init__(self, state_dir: str, federation: Federation, interval: float, timeout: float = 20.0):
        self.dir = ensure_state_dir(state_dir)
        self.path = self.dir / FILE_NAME
        self.federation = federation
        self.interval = interval
        self.timeout = timeout
        self.entries: list[dict] = self._load()
        self._task: asyncio.Task | None = None

    @classmethod
    def at(cls, state_dir: str, federation: Federation, interval: float = 30.0,
           timeout: float = 20.0) -> "CancelBacklog":
        """One backlog per state directory in this process."""
        key = os.path.abspath(state_dir)
        backlogs = runtime.current().backlogs
        if key not in backlogs:
            backlogs[key] = cls(key, federation, interval, timeout)
        backlog = backlogs[key]
        backlog.federation, backlog.interval, backlog.timeout = federation, interval, timeout
        return backlog

    # ------------------------------------------------------------------ the file

    def _load(self) -> list[dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            return self._move_aside(f"cannot be read ({e})")
        if not isinstance(data, list):
            return self._move_aside(f"holds a {type(data).__name__}, not a list of jobs")
        good = [e for e in data if _valid(e)]
        bad = [e for e in data if not _valid(e)]
        if bad:
            self._set_aside(bad, "not an owed scancel FedHub understands")
            self.entries = good
            self._save()
        return good

    def _move_aside(self, why: str) -> list[dict]:
        aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
        os.replace(self.path, aside)
        log.error("The owed-scancel file %s %s; moved it to %s. Check those jobs by hand.", self.path, why, aside)
        return []

    def _set_aside(self, entries: list, why: str) -> None:
        path = self.dir / SET_ASIDE_NAME
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = []
        kept = kept if isinstance(kept, list) else []
        for entry in entries:
            kept.append({"entry": entry, "why": why, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
            log.error("Owed scancel %s set aside in %s: %s. Cancel it by hand if it still runs.",
                      entry, path, why)
        write_private_json(path, kept)

    def _save(self) -> None:
        write_private_json(self.path, self.entries)

    # ------------------------------------------------------------------ adding

    def _add(self, entry: dict) -> None:
        entry = {k: v for k, v in entry.items() if v is not None}
        key = {k: entry.get(k) for k in ("centre", "job_id", "submission")}
        if not any({k: e.get(k) for k in key} == key for e in self.entries):
            self.entries.append(entry)
            self._save()
        self.ensure_retrying()

    def add(self, centre: str, job_id: str, login: str, reason: str | None = None) -> None:
        """Owe the scancel of ``job_id``: its centre did not answer."""
        self._add({"centre": centre, "job_id": str(job_id), "login": login, "reason": reason,
                   "since": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def add_lost_submission(self, centre: str, login: str, job_name: str, submission: str) -> None:
        """sbatch's answer was lost: find the job by its submission tag and cancel it."""
        self._add({"centre": centre, "login": login, "job_name": job_name, "submission": submission,
                   "since": time.strftime("%Y-%m-%dT%H:%M:%S")})

    # ------------------------------------------------------------------ retrying

    async def _settle(self, entry: dict) -> str:
        """'done', 'retry' or a reason to set the entry aside."""
        centre = self.federation.centre(entry["centre"])
        if centre is None:
            return f"centre {entry['centre']!r} is no longer in the federation file"
        client = SlurmClient(centre, timeout=self.timeout)
        try:
            job_ids = [entry["job_id"]] if entry.get("job_id") else None
            if job_ids is None:  # a lost submission: is the job there now?
                owned = await client.owned_jobs(entry["job_name"], None)
                job_ids = [j.job_id for j in owned if j.login == entry["login"]
                           and (parse_comment(j.comment) or {}).get("submission") == entry["submission"]]
                if not job_ids:
                    return "done"  # Slurm answered and has no such job: nothing was submitted
            await client.cancel(job_ids, entry["login"])
        except SchedulerUnreachable:
            return "retry"
        except (LoginRefused, ValueError) as e:
            return f"the login cannot be used: {e}"
        except SchedulerError as e:
            log.warning("scancel of %s at %s: %s", entry, centre.id, e)
            return "done"
        log.info("Cancelled job %s at %s (owed since %s: %s)", entry.get("job_id") or entry.get("submission"),
                 centre.id, entry.get("since", "?"), entry.get("reason", "centre not answering"))
        return "done"

    async def retry_once(self) -> int:
        """Try every owed scancel once; return how many are still owed."""
        settled, aside = [], []
        for entry in list(self.entries):
            try:
                outcome = await self._settle(entry)
            except Exception as e:  # one bad entry must never hold up the others
                log.exception("Owed scancel %s failed unexpectedly", entry)
                outcome = f"unexpected error: {e}"
            if outcome == "done":
                settled.append(entry)
            elif outcome != "retry":
                aside.append((entry, outcome))
        if settled or aside:
            # Entries added while this pass awaited are in self.entries: keep them.
            gone = [id(e) for e in settled] + [id(e) for e, _ in aside]
            self.entries = [e for e in self.entries if id(e) not in gone]
            self._save()
            for entry, why in aside:
                self._set_aside([entry], why)
        return len(self.entries)

    def ensure_retrying(self) -> None:
        """Start the background retry loop on the running event loop, once."""
        if not self.entries or (self._task is not None and not self._task.done()):
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
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
                log.exception("Retrying owed scancels failed")
