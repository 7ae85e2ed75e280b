"""Allocation figures per user and centre, cached per centre so that no request reads Slurm.

Each centre's accounting is read in one batch (``accounting.read_raw``: one sacct, one sacctmgr
and the storage command, for all users) at most once per ``max_age`` seconds, in the
background; askers get the last figures meanwhile (their ``read_at`` says how old).
A request is answered from the cache, computed for its user. If a centre's accounting does not
answer, its last figures are kept (marked stale) and the error is reported with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from ..federation import Centre, Federation
from ..logins import usable_login
from ..slurm.client import SlurmClient
from ..slurm.commands import SchedulerError, SchedulerUnreachable
from .accounting import Allocation, project_allocations, read_raw

log = logging.getLogger("JupyterHub.fedhub.quota")  # the hub's handlers and level


@dataclass
class CentreFigures:
    usage: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    storage: dict | None = None
    period_start: datetime | None = None
    read_at: datetime | None = None
    read_at_monotonic: float = float("-inf")
    error: str | None = None


class QuotaCache:
    def __init__(self, federation: Federation, max_age: float = 60.0, timeout: float = 20.0):
        self.federation = federation
        self.max_age = max_age
        self.clients = {c.id: SlurmClient(c, timeout=timeout) for c in federation.centres if c.accounting}
        self.figures: dict[str, CentreFigures] = {cid: CentreFigures() for cid in self.clients}
        self.refreshes = 0  # accounting batches read (two queries each)
        self._inflight: dict[str, asyncio.Task] = {}

    async def _refresh(self, centre: Centre) -> None:
        now = datetime.now()
        since = centre.accounting.period_start(now)
        client = self.clients[centre.id]
        self.refreshes += 1
        started = time.monotonic()
        try:
            usage, limits, storage = await read_raw(client, since)
        except (SchedulerUnreachable, SchedulerError) as e:
            self.figures[centre.id].error = str(e)
            log.warning("Accounting at %s could not be read (%s); keeping figures from %s", centre.id, e,
                        self.figures[centre.id].read_at or "never")
            return
        self.figures[centre.id] = CentreFigures(usage, limits, storage, since, now, time.monotonic())
        log.info("Read accounting at %s in %.0f ms: %d user/account pairs, %d limits", centre.id,
                 (time.monotonic() - started) * 1000, len(usage), len(limits))

    async def centre(self, centre: Centre, fresh: bool = False) -> CentreFigures:
        """The centre's figures. Stale ones are answered at once while one refresh runs in the
        background (a slow accounting database never delays a display); ``fresh`` callers (a
        spawn deciding whether an allocation is used up) and callers with no figures yet wait
        for that refresh, which concurrent callers share."""
        figures = self.figures[centre.id]
        if time.monotonic() - figures.read_at_monotonic > self.max_age:
            task = self._inflight.get(centre.id)
            if task is None or task.done():
                task = self._inflight[centre.id] = asyncio.ensure_future(self._refresh(centre))
            if fresh or figures.read_at is None:
                await asyncio.shield(task)
        return self.figures[centre.id]

    async def for_user(self, hub_user: str, fresh: bool = False) -> dict[str, tuple[list[Allocation], str | None]]:
        """centre id -> (the user's allocations there, one per project, the default first; error
        or None), for every centre that keeps accounts and where the user has a login."""
        centres = [c for c in self.federation.centres if c.id in self.clients
                   and usable_login(c, hub_user) is not None]
        figures = await asyncio.gather(*(self.centre(c, fresh) for c in centres))
        result = {}
        for centre, f in zip(centres, figures):
            if f.read_at is None:
                result[centre.id] = ([], f.error or "not read yet")
                continue
            mine = project_allocations(centre, f.usage, f.limits, hub_user, f.period_start, f.read_at, f.storage)
            result[centre.id] = (mine, f.error)
        return result


def quota_report(federation: Federation, hub_user: str, figures: dict, culled=None) -> dict:
    """The JSON a client sees: every centre's figures with a level (ok, warn, critical, used-up),
    at the federation file's ``allocation_warnings``, and (``culled``: the hub's
    ``culling.returned.CulledLedger``) the core-hours culling gave back there this period."""
    warn, critical = federation.warn_percent, federation.critical_percent
    centres = []
    for centre in federation.centres:
        if centre.id not in figures:
            continue
        mine, error = figures[centre.id]
        if not mine:
            centres.append({"centre": centre.id, "name": centre.name, "error": error})
        for allocation in mine:  # one entry per project, the default first
            entry = {"centre": centre.id, "name": centre.name, "error": error, **allocation.as_dict(),
                     "level": level(allocation, federation)}
            if culled is not None:
                returned, servers = culled.total(hub_user, centre.id, allocation.period_start)
                entry["culling"] = {"core_hours_returned": returned, "servers_culled": servers}
            centres.append(entry)
    return {"user": hub_user, "thresholds": {"warn": warn, "critical": critical}, "centres": centres}


LEVELS = ("ok", "warn", "critical", "used-up")  # the names the lab, quota() and the hub share


def level(allocation: Allocation, federation: Federation) -> str:
    """How much of an allocation is used, in words: the one place this is decided."""
    pct = allocation.percent_used
    if allocation.used_up:
        return "used-up"
    if pct is not None and pct >= federation.critical_percent:
        return "critical"
    if pct is not None and pct >= federation.warn_percent:
        return "warn"
    return "ok"
