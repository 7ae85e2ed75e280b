"""One Slurm job's life at one centre: submit, follow, cancel (or owe the scancel), find again.

A notebook server is one such job today (``spawning.spawner``); a kernel will be another. The
lifecycle knows nothing of JupyterHub: it is given a centre, the login to act as, and an owner
(hub, hub user, server) that it writes into the job itself, so the hub can find the job after a
lost answer or a restart:

- job name ``fedhub-<hub id>``: every job of this hub, listed with one ``squeue --name``;
- comment ``fedhub:<kind>:<centre>:<hub user>:<server>:<submission>``: which server, which attempt
  (the centre too: two federation entries may name one Slurm cluster).

Rules it keeps:
- A job is gone only when Slurm answered and did not list it (or listed it as ended).
- A submission whose answer was lost (timeout, dropped ssh) is looked for by its submission
  tag; if it cannot be found now, the backlog keeps looking and cancels it when it appears.
- A scancel that cannot reach the centre is owed to the backlog, never dropped.
- Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime

from ..federation import Centre
from .cancellations import CancelBacklog
from .. import runtime
from .client import SlurmClient
from .commands import ControllerUnreachable, JobInfo, JobSpec, OwnedJob, SchedulerError, SchedulerUnreachable
from .monitor import CentreWatcher
from .owner import JobOwner, parse_comment

def known_jobs(centre_id: str) -> set[str]:
    """Jobs this process has submitted or adopted at the centre, and submissions in flight (job
    ids and "submission:<tag>"): what the sweep must leave alone."""
    return runtime.current().known_jobs.setdefault(centre_id, set())


class SubmissionUncertain(SchedulerUnreachable):
    """sbatch did not answer: the job may or may not exist. The backlog looks for it and
    cancels it once the centre answers."""


@dataclass(frozen=True)
class Observation:
    """What the hub learnt about the job from one scheduler answer (or the lack of one)."""

    answered: bool
    info: JobInfo | None = None  # None while answered: Slurm no longer lists the job
    error: str | None = None
    centre_up: bool = True  # False once the monitor has marked the centre down

    @property
    def gone(self) -> bool:
        return self.answered and (self.info is None or self.info.is_finished)


class SlurmJob:
    """A job at ``centre`` run as ``login`` for ``owner``. Store ``to_state()``; rebuild with
    ``from_state()``."""

    def __init__(self, centre: Centre, login: str, owner: JobOwner, *, client: SlurmClient,
                 backlog: CancelBacklog, watcher: CentreWatcher | None = None, job_id: str = "",
                 submission: str = ""):
        self.centre = centre
        self.login = login
        self.owner = owner
        self.client = client
        self.backlog = backlog
        self.watcher = watcher
        self.job_id = job_id
        self.submission = submission
        self.released = False  # cancelled (or owed to the backlog): this object no longer follows it
        if job_id:
            self._know(job_id)

    def __repr__(self) -> str:
        return f"<SlurmJob {self.job_id or '(not submitted)'} at {self.centre.id} as {self.login}>"

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict:
        return {"centre": self.centre.id, "login": self.login, "job_id": self.job_id, "submission": self.submission}

    def _know(self, key: str) -> None:
        known_jobs(self.centre.id).add(key)
        if self.watcher is not None and not key.startswith("submission:"):
            self.watcher.track(key)

    def _forget(self, key: str) -> None:
        known_jobs(self.centre.id).discard(key)
        if self.watcher is not None:
            self.watcher.untrack(key)

    # ------------------------------------------------------------------ submit

    async def submit(self, spec: JobSpec, script: str, env: dict[str, str], output_dir: str | None = None) -> str:
        """sbatch the job; return its id. A lost answer is looked into before anything is said."""
        self.submission = secrets.token_hex(6)
        spec = replace(spec, name=self.owner.job_name, comment=self.owner.comment(self.centre.id, self.submission))
        self._know(f"submission:{self.submission}")
        try:
            self.job_id = await self.client.submit(spec, script, self.login, env, output_dir=output_dir,
                                                   submission=self.submission)
        except ControllerUnreachable:
            raise  # sbatch never reached the controller: nothing was submitted
        except SchedulerUnreachable as e:
            found = await self._find_submission()
            if found is None:
                self.backlog.add_lost_submission(self.centre.id, self.login, self.owner.job_name, self.submission)
                raise SubmissionUncertain(str(e)) from None
            self.job_id = found.job_id
        finally:
            self._forget(f"submission:{self.submission}")
        self._know(self.job_id)
        return self.job_id

    async def _find_submission(self) -> OwnedJob | None:
        try:
            jobs = await self.client.owned_jobs(self.owner.job_name, None)
        except (SchedulerUnreachable, SchedulerError):
            return None
        # the login too: anyone may copy a comment that squeue shows them
        return next((j for j in jobs if j.login == self.login
                     and (parse_comment(j.comment) or {}).get("submission") == self.submission), None)

    # ------------------------------------------------------------------ follow

    async def observe(self, fresh: bool = True, bound: float | None = None) -> Observation:
        """What Slurm says about the job: a snapshot taken from now on (``fresh``), or the
        latest one; never waiting longer than ``bound`` seconds (default: the scheduler timeout
        plus the watcher's interval)."""
        if self.watcher is not None:
            self.watcher.track(self.job_id)
            if fresh:
                bound = bound if bound is not None else self.client.timeout + self.watcher.fast_interval + 1
                try:
                    snapshot = await asyncio.wait_for(self.watcher.fresh_snapshot(), bound)
                except asyncio.TimeoutError:
                    return Observation(False, error=f"no answer within {bound:.0f} s", centre_up=self.watcher.up)
            else:
                self.watcher.ensure_running()
                snapshot = self.watcher.latest
                if snapshot is None:
                    return Observation(False, error="not asked yet")
            if not snapshot.knows(self.job_id):
                return Observation(False, error=snapshot.error or "not asked yet", centre_up=snapshot.up)
            return Observation(True, snapshot.jobs.get(self.job_id), centre_up=snapshot.up)
        try:
            jobs = await self.client.jobs([self.job_id], None)
        except SchedulerUnreachable as e:
            return Observation(False, error=str(e))
        return Observation(True, jobs.get(self.job_id))

    async def alive(self) -> bool | None:
        """For poll(): True while Slurm lists the job as pending or running, False once it
        answered that the job is over, None when it has not answered (keep the server)."""
        if not self.job_id or self.released:
            return False
        seen = await self.observe(fresh=False)
        if not seen.answered:
            return None
        if seen.gone:
            self._forget(self.job_id)
            return False
        return True

    # ------------------------------------------------------------------ cancel

    async def cancel(self, confirm_timeout: float = 15.0) -> str:
        """scancel the job and wait (at most ``confirm_timeout``) for Slurm to confirm it ended.

        Returns "ended", "owed" (the centre did not answer: the backlog retries until it does)
        or "unconfirmed" (scancel was accepted, the end not yet seen). The job is never
        forgotten before one of those; after it, the monitor no longer asks about it."""
        if not self.job_id:
            return "ended"
        job = self.job_id
        self.released = True
        try:
            await self.client.cancel([job], self.login, submissions=[self.submission])
        except (SchedulerUnreachable, SchedulerError) as e:
            self.backlog.add(self.centre.id, job, self.login, reason=str(e))
            self._forget(job)
            return "owed"
        deadline = time.monotonic() + confirm_timeout
        result = "unconfirmed"
        while time.monotonic() < deadline:
            seen = await self.observe(bound=max(0.1, deadline - time.monotonic()))
            if seen.gone:
                result = "ended"
                break
            if self.watcher is None:
                await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        self._forget(job)
        return result


def job_age_s(job: OwnedJob, now: datetime | None = None) -> float | None:
    if job.submitted is None:
        return None
    return ((now or datetime.now()) - job.submitted).total_seconds()
