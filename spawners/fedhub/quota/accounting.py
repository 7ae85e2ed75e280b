"""Allocations from each centre's Slurm accounting: usage and limits, for every user at once.

Per centre and refresh there are exactly two queries, whatever the number of users: one
``sacct`` for all jobs of the allocation period (CPU-seconds, and GPU-seconds from AllocTRES ×
elapsed time) and one ``sacctmgr show associations`` for the limits (GrpTRESMins on the
user's association and on the account). sacct is preferred over sreport (which misses the
current hour) and sshare (which undercounts finished jobs). Builders and parsers are pure.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

from ..federation import Centre
from ..logins import usable_login
from ..projects import default_charge_account, projects_at
from ..slurm.client import SlurmClient

_GPU_RE = re.compile(r"gres/gpu(:[^=,]+)?=(\d+)")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: int = 0
    gpu_seconds: int = 0


@dataclass(frozen=True)
class Limit:
    cpu_minutes: int | None = None  # GrpTRESMins cpu=
    gpu_minutes: int | None = None  # GrpTRESMins gres/gpu=


@dataclass(frozen=True)
class Allocation:
    """One user's allocation at one centre, as read at ``read_at``."""

    centre: str
    login: str  # the user's login at the centre
    charge_account: str  # the Slurm account charged
    period_start: datetime
    read_at: datetime
    core_hours_used: float
    core_hours_limit: float | None
    gpu_hours_used: float
    gpu_hours_limit: float | None
    storage_used_gb: float | None = None
    storage_limit_gb: float | None = None
    project: str | None = None  # the project, where the centre offers the user a choice of them

    @property
    def core_hours_remaining(self) -> float | None:
        return None if self.core_hours_limit is None else max(0.0, self.core_hours_limit - self.core_hours_used)

    @property
    def percent_used(self) -> float | None:
        if not self.core_hours_limit:
            return None
        return round(100 * self.core_hours_used / self.core_hours_limit, 1)

    @property
    def used_up(self) -> bool:
        return self.core_hours_limit is not None and self.core_hours_used >= self.core_hours_limit

    def as_dict(self) -> dict:
        return {
            "centre": self.centre, "login": self.login, "charge_account": self.charge_account,
            "project": self.project,
            "period_start": self.period_start.isoformat(), "read_at": self.read_at.isoformat(),
            "core_hours": {"used": round(self.core_hours_used, 4), "limit": self.core_hours_limit,
                           "remaining": self.core_hours_remaining, "percent": self.percent_used},
            "gpu_hours": {"used": round(self.gpu_hours_used, 4), "limit": self.gpu_hours_limit},
            "storage_gb": {"used": self.storage_used_gb, "limit": self.storage_limit_gb},
        }


def sacct_usage_argv(cluster: str, since: datetime) -> list[str]:
    return ["sacct", "--allusers", "--allocations", "--noheader", "--parsable2", f"--clusters={cluster}",
            "--format=User,Account,CPUTimeRAW,ElapsedRaw,AllocTRES",
            f"--starttime={since:%Y-%m-%dT%H:%M:%S}", "--endtime=now"]


def limits_argv(cluster: str) -> list[str]:
    return ["sacctmgr", "--noheader", "--parsable2", "show", "associations", f"cluster={cluster}",
            "format=Account,User,GrpTRESMins"]


def gpus_allocated(tres: str) -> int:
    """GPUs in an AllocTRES field. Slurm lists the total (gres/gpu=2) and, when typed, the same
    GPUs again per type (gres/gpu:a100=2): count the total, or the typed ones if it is absent."""
    untyped = [int(n) for kind, n in _GPU_RE.findall(tres) if not kind]
    return sum(untyped) if untyped else sum(int(n) for _, n in _GPU_RE.findall(tres))


def parse_usage(stdout: str) -> dict[tuple[str, str], Usage]:
    """(login, charge account) -> CPU- and GPU-seconds of the period's jobs."""
    totals: dict[tuple[str, str], list[int]] = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 5 or not parts[0]:
            continue
        user, account, cpu, elapsed, tres = parts
        gpus = gpus_allocated(tres)
        t = totals.setdefault((user, account), [0, 0])
        t[0] += int(cpu) if cpu.isdigit() else 0
        t[1] += gpus * (int(elapsed) if elapsed.isdigit() else 0)
    return {k: Usage(*v) for k, v in totals.items()}


def _tres_minutes(text: str, name: str) -> int | None:
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key == name and value.isdigit():
            return int(value)
    return None


def parse_storage(stdout: str) -> dict[str, int]:
    """'<bytes>\t/scratch/alice' lines (du -b --max-depth=1 and the like) -> {alice: bytes}."""
    used = {}
    for line in stdout.splitlines():
        size, _, path = line.partition("\t")
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if size.strip().isdigit() and name:
            used[name] = int(size)
    return used


def parse_limits(stdout: str) -> dict[tuple[str, str], Limit]:
    """(charge account, login or '' for the account itself) -> GrpTRESMins limits."""
    limits = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 3:
            continue
        account, user, tres = parts
        limits[(account, user)] = Limit(_tres_minutes(tres, "cpu"), _tres_minutes(tres, "gres/gpu"))
    return limits


def allocations(centre: Centre, usage: dict[tuple[str, str], Usage], limits: dict[tuple[str, str], Limit],
                hub_users: list[str], period_start: datetime, read_at: datetime,
                storage: dict[str, int] | None = None) -> dict[str, Allocation]:
    """Per hub user: their usage against the tighter of their own and their account's limit, for
    the account a job charges when it names no project."""
    result = {}
    for hub_user in hub_users:
        mine = project_allocations(centre, usage, limits, hub_user, period_start, read_at, storage)
        if mine:
            result[hub_user] = mine[0]
    return result


def project_allocations(centre: Centre, usage: dict[tuple[str, str], Usage], limits: dict[tuple[str, str], Limit],
                        hub_user: str, period_start: datetime, read_at: datetime,
                        storage: dict[str, int] | None = None) -> list[Allocation]:
    """The user's allocation in each project they may charge at the centre (the default first)."""
    login = usable_login(centre, hub_user)
    if login is None:
        return []
    if centre.projects is not None and centre.projects.slurm_associations:
        projects = sorted({account for account, user in limits if user == login})  # the same sacctmgr read
    else:
        projects = projects_at(centre, hub_user)
    accounts = projects if projects is not None else [default_charge_account(centre, hub_user)]
    result = []
    for account in accounts:
        if account is None:
            continue
        mine = usage.get((login, account), Usage())
        account_total = Usage(sum(u.cpu_seconds for (_, a), u in usage.items() if a == account),
                              sum(u.gpu_seconds for (_, a), u in usage.items() if a == account))
        own, shared = limits.get((account, login), Limit()), limits.get((account, ""), Limit())
        core_limit, core_used = _tightest(mine.cpu_seconds, own.cpu_minutes, account_total.cpu_seconds, shared.cpu_minutes)
        gpu_limit, gpu_used = _tightest(mine.gpu_seconds, own.gpu_minutes, account_total.gpu_seconds, shared.gpu_minutes)
        result.append(Allocation(
            centre=centre.id, login=login, charge_account=account, period_start=period_start, read_at=read_at,
            core_hours_used=core_used, core_hours_limit=core_limit,
            gpu_hours_used=gpu_used, gpu_hours_limit=gpu_limit,
            storage_used_gb=round(storage.get(login, 0) / 1024**3, 3) if storage is not None else None,
            storage_limit_gb=(round(centre.accounting.storage_limit_mb / 1024, 3)
                              if centre.accounting.storage_limit_mb else None),
            project=account if projects is not None else None,
        ))
    return result


def _tightest(own_used_s: int, own_limit_min: int | None, shared_used_s: int,
              shared_limit_min: int | None) -> tuple[float | None, float]:
    """(limit, used) in hours of whichever limit leaves less: the user's own or the account's."""
    candidates = []
    if own_limit_min is not None:
        candidates.append((own_limit_min / 60, own_used_s / 3600))
    if shared_limit_min is not None:
        candidates.append((shared_limit_min / 60, shared_used_s / 3600))
    if not candidates:
        return None, own_used_s / 3600
    return min(candidates, key=lambda c: c[0] - c[1])


async def read_raw(client: SlurmClient, since: datetime) -> tuple[dict, dict, dict | None]:
    """(usage, limits, storage) of every user at the client's centre: one sacct, one sacctmgr
    and, if configured, one storage command."""
    accounting = client.centre.accounting
    cluster = client.centre.cluster
    queries = [client.query(sacct_usage_argv(cluster, since)), client.query(limits_argv(cluster))]
    if accounting.storage_command:
        queries.append(client.query(list(accounting.storage_command)))
    outputs = await asyncio.gather(*queries)
    storage = parse_storage(outputs[2]) if accounting.storage_command else None
    return parse_usage(outputs[0]), parse_limits(outputs[1]), storage


async def read_centre(client: SlurmClient, hub_users: list[str], now: datetime | None = None) -> dict[str, Allocation]:
    """Every listed user's allocation at the client's centre, read now."""
    centre = client.centre
    if centre.accounting is None:
        return {}
    now = now or datetime.now()
    since = centre.accounting.period_start(now)
    usage, limits, storage = await read_raw(client, since)
    return allocations(centre, usage, limits, hub_users, since, now, storage)
