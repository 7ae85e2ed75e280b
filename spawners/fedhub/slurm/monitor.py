"""One watcher per centre: a single scheduler query per interval serves every spawner.

batchspawner runs one squeue per user per poll, so a class of 500 costs a centre 1000 queries
a minute (its issue 292). Here each centre has a ``CentreWatcher`` that asks Slurm once per
interval about *all* of the hub's jobs there (one squeue), and every spawner's ``poll()``,
every waiting start and every placement reads the resulting ``CentreSnapshot``. Scheduler load
grows with the number of centres, not users.

Health: a centre whose scheduler stops answering is still "up" for a grace period (a blip
must not stop anyone's server); after it, the centre is "down" (placement skips it, the form
marks it) until it answers again. Only a snapshot that *answered* can say a job is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from .. import runtime
from ..federation import Centre, Federation
from ..metrics import CENTRE_UP
from .client import SlurmClient
from .commands import JobInfo, NodeInfo, SchedulerError, SchedulerUnreachable

log = logging.getLogger("JupyterHub.fedhub.monitor")  # the hub's handlers and level


@dataclass(frozen=True)
class CentreSnapshot:
    centre: str
    taken_at: float  # time.monotonic() when the query was sent
    answered: bool  # the scheduler answered this query
    up: bool  # answered, or failing for less than the grace period
    latency_ms: float | None = None
    jobs: dict[str, JobInfo] = field(default_factory=dict)  # tracked jobs that Slurm listed
    tracked: frozenset[str] = frozenset()  # job ids this query asked about
    error: str | None = None
    down_since: float | None = None  # monotonic time of the first failure in a row

    def knows(self, job_id: str) -> bool:
        """Whether this snapshot can speak about ``job_id`` at all."""
        return self.answered and job_id in self.tracked

    def job_gone(self, job_id: str) -> bool:
        """Slurm answered about this job and it is over (or no longer listed)."""
        if not self.knows(job_id):
            return False
        info = self.jobs.get(job_id)
        return info is None or info.is_finished


def next_health(previous: CentreSnapshot | None, answered: bool, now: float, grace: float) -> tuple[bool, float | None]:
    """(up, down_since) after a query that did or did not get an answer. Pure."""
    if answered:
        return True, None
    since = previous.down_since if previous is not None and previous.down_since is not None else now
    return (now - since) < grace, since


@dataclass(frozen=True)
class NodeFigures:
    nodes: tuple[NodeInfo, ...]
    taken_at: float
    pending: int | None = None  # jobs waiting in the centre's queue (None: not known)

    def idle_cpus(self, partition: str) -> int:
        return sum(n.cpus_idle for n in self.nodes if partition in n.partitions
                   and not n.state.startswith(("down", "drain", "fail")))


class CentreWatcher:
    """Keeps one centre's snapshot fresh with one scheduler query per interval."""

    def __init__(self, centre: Centre, *, interval: float = 20.0, fast_interval: float = 0.5,
                 grace: float = 30.0, timeout: float = 20.0):
        self.centre = centre
        self.client = SlurmClient(centre, timeout=timeout)
        self.interval = interval
        self.fast_interval = fast_interval
        self.grace = grace
        self.tracked: set[str] = set()
        self.latest: CentreSnapshot | None = None
        self.nodes: NodeFigures | None = None
        self.refreshes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters = 0
        self._task: asyncio.Task | None = None
        self._stopping = False
        CENTRE_UP.labels(centre.id).set(1)

    # ---------------------------------------------------------------- what spawners use

    def track(self, job_id: str) -> None:
        self.tracked.add(str(job_id))

    def untrack(self, job_id: str) -> None:
        self.tracked.discard(str(job_id))

    @property
    def up(self) -> bool:
        return self.latest is None or self.latest.up

    async def fresh_snapshot(self) -> CentreSnapshot:
        """The next snapshot taken from now on (asks the watcher to hurry while anyone waits)."""
        self.ensure_running()
        asked_at = time.monotonic()
        self._waiters += 1
        self._wake.set()
        try:
            async with self._new_snapshot:
                await self._new_snapshot.wait_for(
                    lambda: self.latest is not None and self.latest.taken_at >= asked_at
                )
                return self.latest
        finally:
            self._waiters -= 1

    async def node_figures(self, max_age: float = 30.0) -> NodeFigures:
        """Nodes, idle CPUs and pending jobs, from sinfo and squeue at most ``max_age`` seconds old
        (placement and every page view of the spawn form share them)."""
        if self.nodes is None or time.monotonic() - self.nodes.taken_at > max_age:
            taken = time.monotonic()
            nodes, pending = await asyncio.gather(self.client.nodes(None), self.client.pending_count(None),
                                                  return_exceptions=True)
            if isinstance(nodes, BaseException):
                raise nodes
            self.nodes = NodeFigures(tuple(nodes), taken, pending if isinstance(pending, int) else None)
        return self.nodes

    # ---------------------------------------------------------------- the loop

    def _bind_to_loop(self) -> None:
        """asyncio primitives belong to one event loop: make them for the running one."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._new_snapshot = asyncio.Condition()
            self._wake = asyncio.Event()
            self._task = None

    def ensure_running(self) -> None:
        self._bind_to_loop()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.refresh()
            except Exception:
                if asyncio.current_task().cancelling():
                    raise  # being stopped: never swallow the cancellation
                log.exception("Monitor of centre %s failed a refresh", self.centre.id)
            if self._stopping:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.fast_interval if self._waiters else self.interval)
            except asyncio.TimeoutError:
                pass
            # someone is waiting: refresh soon, but never more often than fast_interval
            gap = self.fast_interval - (time.monotonic() - self.latest.taken_at) if self.latest else 0
            if gap > 0 and not self._stopping:
                await asyncio.sleep(gap)

    async def stop(self) -> None:
        """End the loop after its current query instead of cancelling it. Python 3.11's
        create_subprocess_exec never returns when cancelled before its pipes connect (CPython
        gh-103847), so cancelling a watcher mid-query, as asyncio.run does to leftover tasks,
        can hang the caller."""
        task = self._task
        if task is None or task.done() or self._loop is not asyncio.get_running_loop():
            return
        self._stopping = True
        self._wake.set()
        try:
            await task
        finally:
            self._stopping = False
            self._task = None

    async def refresh(self) -> CentreSnapshot:
        """One scheduler query: squeue of every tracked job, or sinfo when there is none."""
        self._bind_to_loop()
        started = time.monotonic()
        tracked = frozenset(self.tracked)
        jobs: dict[str, JobInfo] = {}
        error = None
        try:
            if tracked:
                jobs = await self.client.jobs(sorted(tracked), None)
            else:
                self.nodes = NodeFigures(tuple(await self.client.nodes(None)), started)
            answered = True
        except (SchedulerUnreachable, SchedulerError) as e:
            answered, error = False, str(e)
        now = time.monotonic()
        up, down_since = next_health(self.latest, answered, now, self.grace)
        snapshot = CentreSnapshot(
            centre=self.centre.id, taken_at=started, answered=answered, up=up,
            latency_ms=round((now - started) * 1000, 1) if answered else None,
            jobs=jobs, tracked=tracked, error=error, down_since=down_since,
        )
        self._log_transition(self.latest, snapshot)
        self.refreshes += 1
        async with self._new_snapshot:
            self.latest = snapshot
            self._new_snapshot.notify_all()
        return snapshot

    def _log_transition(self, before: CentreSnapshot | None, after: CentreSnapshot) -> None:
        was_up = before is None or before.up
        if was_up and not after.up:
            CENTRE_UP.labels(self.centre.id).set(0)
            log.error("Centre %s marked DOWN: its scheduler has not answered for %.0f s (%s). "
                      "Placement skips it; running servers are kept.", self.centre.id,
                      time.monotonic() - after.down_since, after.error)
        elif not was_up and after.up:
            CENTRE_UP.labels(self.centre.id).set(1)
            log.warning("Centre %s is UP again (answered in %s ms)", self.centre.id, after.latency_ms)
        elif after.answered is False and (before is None or before.answered):
            log.warning("Centre %s did not answer (%s); within the %.0f s grace", self.centre.id,
                        after.error, self.grace)


class FederationMonitor:
    """The watchers of one federation, one set per process (shared by all spawners)."""

    def __init__(self, federation: Federation, **settings):
        self.federation = federation
        self.settings = settings
        self.watchers = {c.id: CentreWatcher(c, **settings) for c in federation.centres}

    @classmethod
    def of(cls, federation: Federation, **settings) -> "FederationMonitor":
        """The process's monitor of ``federation`` with these settings (made on first use)."""
        monitors = runtime.current().monitors
        key = (id(federation), tuple(sorted(settings.items())))
        if key not in monitors:
            monitors[key] = cls(federation, **settings)
        return monitors[key]

    def watcher(self, centre_id: str) -> CentreWatcher:
        return self.watchers[centre_id]

    def ensure_running(self) -> None:
        for watcher in self.watchers.values():
            watcher.ensure_running()

    async def stop(self) -> None:
        """Stop every watcher after its current query (before an event loop ends)."""
        await asyncio.gather(*(w.stop() for w in self.watchers.values()))

    def health(self) -> dict[str, bool]:
        return {cid: w.up for cid, w in self.watchers.items()}
