"""The sweep: cancel every job of this hub that no server in this hub knows.

JupyterHub stores a server's state only once its start returns, so a hub killed while a job is
pending forgets the job id; a lost sbatch answer can also leave a job nobody follows. Every job
FedHub submits is named ``fedhub-<hub id>`` (see ``job.JobOwner``), so one ``squeue --name`` per
centre lists all of this hub's jobs. After a hub start (by then JupyterHub has rebuilt every
running server from its state, and each has registered its job) and then every ``interval``,
any listed job that is alive, at least ``min_age`` seconds old, and neither a known job nor a
submission in flight is cancelled, and the log says which and why. A job is cancelled only as
the login Slurm says owns it and only when its comment is FedHub's, so a centre user who names
a job like this hub's can at most have their own job cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from .. import runtime
from ..federation import Federation
from .client import SlurmClient
from .commands import PENDING_STATES, RUNNING_STATES, SchedulerError, SchedulerUnreachable
from .job import job_age_s, known_jobs
from .owner import parse_comment

log = logging.getLogger("JupyterHub.fedhub.sweep")  # the hub's handlers and level


async def sweep_centre(client: SlurmClient, job_name: str, min_age_s: float, now: datetime | None = None) -> list[str]:
    """Cancel this hub's unknown jobs at one centre; return their ids."""
    known = known_jobs(client.centre.id)
    cancelled = []
    for job in await client.owned_jobs(job_name):
        if job.state not in PENDING_STATES | RUNNING_STATES or job.job_id in known:
            continue
        about = parse_comment(job.comment)
        if about is None:
            continue  # anyone may take this hub's job name; only a job FedHub wrote is cancelled
        if about["centre"] != client.centre.id:
            continue  # another federation entry for the same cluster: its own sweep decides
        if f"submission:{about.get('submission')}" in known:
            continue  # its sbatch has not returned yet
        age = job_age_s(job, now)
        if age is None or age < min_age_s:
            continue
        try:
            await client.cancel([job.job_id], job.login, submissions=[about["submission"]])  # as Slurm's owner
        except (SchedulerError, ValueError) as e:  # e.g. a job of root's that merely took the name
            log.error("Sweep: job %s at %s (login %s) carries this hub's name but could not be cancelled: %s",
                      job.job_id, client.centre.id, job.login, e)
            continue
        cancelled.append(job.job_id)
        log.warning("Sweep: cancelled job %s at %s (login %s, hub user %s, server %r), submitted %s: no server "
                    "of this hub knows it (the hub stopped while it started, or sbatch's answer was lost)",
                    job.job_id, client.centre.id, job.login, about.get("hub_user", "?"), about.get("server", "?"),
                    job.submitted)
    return cancelled


class JobSweeper:
    """Runs the sweep ``first_delay`` seconds after it is started, then every ``interval``; jobs
    younger than ``min_age_s`` are left alone."""

    def __init__(self, federation: Federation, job_name: str, *, interval: float, first_delay: float,
                 min_age_s: float, timeout: float):
        self.federation = federation
        self.job_name = job_name
        self.interval = interval
        self.first_delay = first_delay
        self.min_age_s = min_age_s
        self.clients = {c.id: SlurmClient(c, timeout=timeout) for c in federation.centres}
        self.cancelled: list[tuple[str, str]] = []
        self._task: asyncio.Task | None = None

    @classmethod
    def of(cls, federation: Federation, job_name: str, **settings) -> "JobSweeper":
        """The process's sweeper of ``job_name`` jobs in ``federation`` (made on first use)."""
        sweepers = runtime.current().sweepers
        key = (id(federation), job_name)
        if key not in sweepers:
            sweepers[key] = cls(federation, job_name, **settings)
        return sweepers[key]

    async def sweep(self) -> list[tuple[str, str]]:
        """One sweep of every centre, concurrently; a centre that does not answer is skipped."""
        async def one(client: SlurmClient):
            try:
                return [(client.centre.id, j) for j in await sweep_centre(client, self.job_name, self.min_age_s)]
            except (SchedulerUnreachable, SchedulerError) as e:
                log.info("Sweep skipped %s this time: %s", client.centre.id, e)
                return []
        found = [pair for pairs in await asyncio.gather(*(one(c) for c in self.clients.values())) for pair in pairs]
        self.cancelled += found
        return found

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.sweep()
            except Exception:
                if asyncio.current_task().cancelling():
                    raise
                log.exception("The sweep of this hub's jobs failed")
            await asyncio.sleep(self.interval)
