"""Where should a server go? Rank the centres that can run a request.

``fitting_options`` keeps the (centre, partition) pairs that satisfy the request, that the user
has a login at, and that the monitor says are up; ``estimate_all`` asks each one, at the
same time, when Slurm would start such a job (``sbatch --test-only``); ``rank`` orders them by
that estimate, then by whether the centre already holds a gigabyte or more of the user's
workspace, then by quota left (a hook the quota service plugs into), then by charge rate.
Everything but ``estimate_all`` is pure, so it is tested and benchmarked on snapshots.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from .federation import Centre, Federation, Partition
from .logins import NoLogin, login_at
from .projects import projects_at
from .slurm.client import SlurmClient
from .slurm.commands import SchedulerError, SchedulerUnreachable
from .request import SpawnRequest
from .jobs.server import job_spec
from .i18n import _, format_number, lazy, sentences

log = logging.getLogger("JupyterHub.fedhub.placement")  # the hub's handlers and level

# quota hook: (hub_user, centre_id) -> fraction of allocation left (0..1), or None if unknown
QuotaHook = Callable[[str, str], "float | None"]

ESTIMATE_SCRIPT = "#!/bin/bash\ntrue\n"
NOW_SLACK_S = 60  # an estimate within a minute of now counts as "starts now"
LARGE_DATA_BYTES = 1 << 30  # a user's data at a centre worth starting there for (when the starts are close)


@dataclass(frozen=True)
class Option:
    centre: Centre
    partition: Partition
    login: str


@dataclass(frozen=True)
class Estimate:
    centre: str
    centre_name: str
    partition: str
    login: str
    start: datetime | None  # None: Slurm could not say (error)
    charge_rate: float
    quota_left: float | None = None
    error: str | None = None
    data_bytes: int = 0  # of the user's workspace the centre already holds (the hub's index)

    def wait_s(self, now: datetime) -> float | None:
        return None if self.start is None else max(0.0, (self.start - now).total_seconds())

    def describe(self, now: datetime) -> str:
        wait = self.wait_s(now)
        if wait is None:
            return _("cannot say ({problem})").format(problem=self.error)
        if wait <= NOW_SLACK_S:
            return _("starts now")
        minutes = round(wait / 60)
        if minutes < 90:
            return _("about {minutes} min wait").format(minutes=minutes)
        return _("about {hours} h wait").format(hours=format_number(wait / 3600))


@dataclass(frozen=True)
class Decision:
    ranked: tuple[Estimate, ...]  # centres that can run it, best first
    rejected: dict[str, object] = field(default_factory=dict)  # centre id -> why not (str() words it)
    now: datetime = field(default_factory=datetime.now)

    @property
    def chosen(self) -> Estimate | None:
        return self.ranked[0] if self.ranked else None

    def summary(self) -> str:
        """'Centre gamma chosen: starts now. alpha: about 40 min wait. beta: down.'"""
        parts = []
        if self.chosen:
            parts.append(_("Centre {centre} chosen ({partition}): {wait}.").format(
                centre=self.chosen.centre, partition=self.chosen.partition, wait=self.chosen.describe(self.now)))
        else:
            parts.append(_("No centre can run this request now."))
        for e in self.ranked[1:]:
            parts.append(_("{centre}: {why}.").format(centre=e.centre, why=e.describe(self.now)))
        for centre, reason in self.rejected.items():
            parts.append(_("{centre}: {why}.").format(centre=centre, why=reason))
        return sentences(parts)


def partition_fits(p: Partition, r: SpawnRequest) -> bool:
    if r.cores > p.max_cores or r.memory_mb > p.max_memory_mb or r.walltime_s > p.max_walltime_s:
        return False
    if r.gpus:
        kind = p.gpu(r.gpu_type)
        return kind is not None and r.gpus <= kind.max
    return True


def fitting_options(federation: Federation, request: SpawnRequest, hub_user: str,
                    health: dict[str, bool], quota: QuotaHook | None = None) -> tuple[list[Option], dict[str, object]]:
    """The (centre, partition) pairs that can run ``request``; why each other centre cannot.
    An unexpected error at one centre rejects that centre only."""
    options: list[Option] = []
    rejected: dict[str, object] = {}
    for centre in federation.centres:
        try:
            fitting, why = _fitting_at(centre, request, hub_user, health, quota)
        except Exception as e:
            log.exception("Placement: checking %s failed unexpectedly", centre.id)
            fitting, why = [], lazy("could not be checked ({problem})", problem=type(e).__name__)
        options += fitting
        if why:
            rejected[centre.id] = why
    return options, rejected


def _fitting_at(centre: Centre, request: SpawnRequest, hub_user: str, health: dict[str, bool],
                quota: QuotaHook | None) -> tuple[list[Option], lazy | None]:
    try:
        login = login_at(centre, hub_user)
    except NoLogin as e:
        return [], lazy("no login ({reason})", reason=e.reason)
    if not health.get(centre.id, True):
        return [], lazy("down")
    if projects_at(centre, hub_user) == []:
        return [], lazy("no project to charge")
    if quota is not None:
        left = quota(hub_user, centre.id)
        if left is not None and left <= 0:
            return [], lazy("allocation used up")
    wanted = request.partition
    if request.places:  # a class start: only the class's centres, each with the class's partition
        place = next((p for p in request.places if p[0] == centre.id), None)
        if place is None:
            return [], lazy("not one of class {name}'s centres", name=request.klass)
        wanted = place[1]
    partitions = [p for p in centre.partitions if partition_fits(p, request)
                  and (not wanted or p.name == wanted)]
    if not partitions:
        return [], lazy("no partition fits this request")
    return [Option(centre, p, login) for p in partitions], None


def rank(estimates: list[Estimate], now: datetime) -> tuple[Estimate, ...]:
    """Soonest start first; then the centre already holding the user's large data (none need
    travel); then most quota left; then cheapest; unknown starts last."""
    def key(e: Estimate):
        wait = e.wait_s(now)
        # starts within the slack are equally "now": then data, quota and price decide
        bucket = float("inf") if wait is None else (0.0 if wait <= NOW_SLACK_S else wait)
        left = e.quota_left if e.quota_left is not None else 1.0  # no limit: nothing in the way
        return (bucket, -(e.data_bytes >= LARGE_DATA_BYTES), -left, e.charge_rate, e.centre, e.partition)
    return tuple(sorted(estimates, key=key))


def decide(estimates: list[Estimate], rejected: dict[str, str], now: datetime) -> Decision:
    """One entry per centre (its best partition): failing over within a centre rarely helps."""
    best: dict[str, Estimate] = {}
    for e in rank([e for e in estimates if e.start is not None], now):
        best.setdefault(e.centre, e)
    rejected = dict(rejected)
    for e in estimates:
        if e.start is None and e.centre not in best:
            rejected.setdefault(e.centre, e.error or lazy("cannot run it"))
    return Decision(ranked=rank(list(best.values()), now), rejected=rejected, now=now)


async def estimate_all(options: list[Option], request: SpawnRequest, hub_user: str,
                       clients: dict[str, SlurmClient], quota: QuotaHook | None = None) -> list[Estimate]:
    """Ask every option's centre, concurrently, when such a job would start. One centre's
    failure, expected or not, is that centre's answer: it never aborts the others."""
    async def one(option: Option) -> Estimate:
        concrete = request.at(option.centre.id, option.partition.name, option.login)
        spec = job_spec(option.centre, concrete, hub_user, output_dir="")
        start, error = None, None
        try:
            start = await clients[option.centre.id].estimate_start(spec, ESTIMATE_SCRIPT, option.login)
        except (SchedulerError, SchedulerUnreachable) as e:
            error = str(e)
        except Exception as e:  # a bug or an unexpected route error at one centre
            log.exception("Placement: asking %s failed unexpectedly", option.centre.id)
            error = f"could not be asked ({type(e).__name__})"
        return Estimate(
            centre=option.centre.id, centre_name=option.centre.name, partition=option.partition.name,
            login=option.login, start=start, charge_rate=option.partition.charge_rate,
            quota_left=quota(hub_user, option.centre.id) if quota else None, error=error,
        )
    return list(await asyncio.gather(*(one(o) for o in options)))
