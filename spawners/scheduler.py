"""The only module that speaks to Slurm.

Pure builders make argv lists for sbatch/squeue/scancel/sinfo and pure parsers read their
output; routes run those argv lists at a centre, either locally (SLURM_CONF selects the
cluster, the command runs as the user's Unix account) or on the centre's login node over ssh.
Nothing here ever builds a shell string from user input: the local route execs argv directly,
and the ssh route quotes every word with shlex for the login node's shell.

Errors are split the way the spawner needs them: ``SchedulerUnreachable`` (the controller or
login node did not answer: never a reason to consider a job gone) versus ``SchedulerError``
(Slurm answered and said no).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import re
import shlex
from dataclasses import dataclass
from datetime import datetime

from .federation import ACCOUNT_NAME_RE, GRES_RE, SLURM_NAME_RE, Centre, LocalScheduler, SshScheduler
from .metrics import SCHEDULER_QUERIES
from .units import format_walltime

DEFAULT_TIMEOUT_S = 20.0
JOB_FORMAT = "%i|%T|%r|%B|%S"
NODE_FORMAT = "%N|%P|%T|%C|%o|%m|%e|%G"
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED"}
RUNNING_STATES = {"RUNNING"}
# Everything else (COMPLETING, COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED,
# OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, ...) means the server is gone or going.

_UNREACHABLE_PATTERNS = (
    "Unable to contact slurm controller",
    "Socket timed out on send/recv",
    "Slurm backup controller in standby mode",
    "Communication connection failure",
    "Zero Bytes were transmitted or received",
)
_GRES_REQUEST_RE = re.compile(GRES_RE.pattern[:-1] + r":\d{1,4}$")  # gres[:type]:count
_JOB_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_OUTPUT_RE = re.compile(r"^[A-Za-z0-9_./%-]{1,200}$")
_ENV_NAME_RE = re.compile(r"^(JUPYTERHUB|JPY)_[A-Z0-9_]+$")


class SchedulerUnreachable(RuntimeError):
    """The centre did not answer (controller down, login node unreachable, timeout)."""


class SchedulerError(RuntimeError):
    """Slurm answered and refused, e.g. a job the partition cannot run."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class JobSpec:
    """What sbatch is asked for. Built only from a validated request and the federation."""

    name: str
    partition: str
    cores: int
    memory_mb: int
    walltime_s: int
    gres: str | None = None  # e.g. "gpu:a100:2"
    output: str = "fedhub-%j.log"
    account: str | None = None  # the Slurm account charged (sbatch --account)


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str
    reason: str
    node: str | None
    start_time: datetime | None

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def is_running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def is_finished(self) -> bool:
        return not (self.is_pending or self.is_running)

    @property
    def held_by_allocation(self) -> bool:
        """Pending on an association's or QOS's time budget (e.g. AssocGrpCPUMinutesLimit): it
        will not start until someone raises the limit, so waiting is pointless."""
        return self.is_pending and self.reason.startswith(("AssocGrp", "AssocMax", "QOSGrp", "QOSMax")) \
            and "Minutes" in self.reason


@dataclass(frozen=True)
class NodeInfo:
    name: str
    partitions: tuple[str, ...]
    state: str
    cpus_allocated: int
    cpus_idle: int
    cpus_total: int
    address: str
    memory_mb: int = 0  # RealMemory
    free_memory_mb: int = 0  # as the node's OS reports it
    gres: str = ""  # e.g. "gpu:a100:4", "(null)" -> ""


# --------------------------------------------------------------------------- builders


def _checked(pattern: re.Pattern, value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"refusing to pass {what} {value!r} to Slurm")
    return value


def _checked_int(value: int, what: str, low: int = 1, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"refusing to pass {what} {value!r} to Slurm")
    return value


def _checked_job_ids(job_ids) -> list[str]:
    ids = [str(j) for j in job_ids]
    if not ids or not all(re.fullmatch(r"\d{1,12}", j) for j in ids):
        raise ValueError(f"refusing to pass job ids {ids!r} to Slurm")
    return ids


def sbatch_argv(job: JobSpec) -> list[str]:
    """sbatch arguments; every value re-checked so a bug upstream cannot inject an option."""
    argv = [
        "sbatch", "--parsable",
        f"--job-name={_checked(_JOB_NAME_RE, job.name, 'job name')}",
        f"--partition={_checked(SLURM_NAME_RE, job.partition, 'partition')}",
        "--nodes=1", "--ntasks=1",
        f"--cpus-per-task={_checked_int(job.cores, 'cores')}",
        f"--mem={_checked_int(job.memory_mb, 'memory')}M",
        f"--time={format_walltime(_checked_int(job.walltime_s, 'walltime', 60))}",
        f"--output={_checked(_OUTPUT_RE, job.output, 'output path')}",
        "--export=ALL",
    ]
    if job.gres:
        argv.append(f"--gres={_checked(_GRES_REQUEST_RE, job.gres, 'gres')}")
    if job.account:
        argv.append(f"--account={_checked(SLURM_NAME_RE, job.account, 'account')}")
    return argv


def estimate_argv(job: JobSpec) -> list[str]:
    """sbatch --test-only: Slurm's own estimate of when such a job would start (nothing queued)."""
    return [sbatch_argv(job)[0], "--test-only", *sbatch_argv(job)[2:]]


def squeue_argv(job_ids) -> list[str]:
    return ["squeue", "--noheader", "--states=all", f"--jobs={','.join(_checked_job_ids(job_ids))}",
            f"--format={JOB_FORMAT}"]


def scancel_argv(job_ids) -> list[str]:
    return ["scancel", *_checked_job_ids(job_ids)]


def sinfo_nodes_argv() -> list[str]:
    return ["sinfo", "--noheader", "--Node", f"--format={NODE_FORMAT}"]


def pending_jobs_argv() -> list[str]:
    return ["squeue", "--noheader", "--states=PENDING", "--format=%i|%P"]


# --------------------------------------------------------------------------- parsers


def parse_sbatch(stdout: str) -> str:
    """'1234' or '1234;cluster' (sbatch --parsable) -> '1234'."""
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        raise SchedulerError("sbatch printed no job id")
    job_id = lines[-1].split(";")[0].strip()
    if not re.fullmatch(r"\d{1,12}", job_id):
        raise SchedulerError(f"sbatch printed {lines[-1]!r}, not a job id")
    return job_id


_TEST_ONLY_RE = re.compile(r"Job \d+ to start at (\S+) using (\d+) processors on nodes (\S+) in partition (\S+)")


def parse_estimate(stderr: str) -> datetime | None:
    """'sbatch: Job 12 to start at 2026-11-24T16:13:19 using 4 processors ...' -> that time."""
    m = _TEST_ONLY_RE.search(stderr)
    return _parse_time(m.group(1)) if m else None


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None  # N/A, Unknown, None


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    jobs = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        job_id, state, reason, node, start = parts
        jobs[job_id] = JobInfo(
            job_id=job_id,
            state=state.split()[0].rstrip("+") if state else "UNKNOWN",
            reason="" if reason in ("None", "(null)") else reason,
            node=None if node in ("n/a", "", "(null)") else node,
            start_time=_parse_time(start),
        )
    return jobs


def _cpu_counts(text: str) -> tuple[int, int, int]:
    try:
        allocated, idle, _other, total = (int(x) for x in text.split("/"))
    except ValueError:
        return 0, 0, 0
    return allocated, idle, total


def parse_sinfo_nodes(stdout: str) -> list[NodeInfo]:
    """One NodeInfo per node (sinfo -N prints a line per node and partition)."""
    nodes: dict[str, NodeInfo] = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 8:
            continue
        name, partition, state, cpus, address, memory, free, gres = parts
        partition = partition.rstrip("*")
        if name in nodes:
            nodes[name] = dataclasses.replace(nodes[name], partitions=nodes[name].partitions + (partition,))
        else:
            nodes[name] = NodeInfo(name, (partition,), state, *_cpu_counts(cpus), address,
                                   _int(memory), _int(free), "" if gres in ("(null)", "") else gres)
    return list(nodes.values())


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def parse_pending(stdout: str) -> int:
    return sum(1 for line in stdout.splitlines() if line.strip())


def is_unreachable(result: CommandResult) -> bool:
    return any(p in result.stderr for p in _UNREACHABLE_PATTERNS)


def slurm_message(stderr: str) -> str:
    """The useful part of a Slurm error: 'sbatch: error: Batch job submission failed: X' -> 'X'."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return "no error message"
    last = lines[-1]
    for prefix in ("Batch job submission failed:",):
        if prefix in last:
            return last.split(prefix, 1)[1].strip()
    return re.sub(r"^[a-z_]+: (error: )?", "", last)


# --------------------------------------------------------------------------- routes

def _scheduler_path() -> str:
    """PATH for Slurm's commands; FEDHUB_SCHEDULER_PATH goes first (site wrappers, or tests
    counting calls)."""
    return ":".join(p for p in (os.environ.get("FEDHUB_SCHEDULER_PATH", ""),
                                "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin") if p)


def _job_env(env: dict[str, str] | None) -> dict[str, str]:
    """Only the Jupyter variables travel to the job; the hub's own environment does not."""
    env = env or {}
    bad = [k for k in env if not _ENV_NAME_RE.match(k)]
    if bad:
        raise ValueError(f"refusing to pass environment variables {bad} to a centre")
    return dict(env)


async def _run(argv: list[str], *, stdin: str | None, env: dict[str, str], timeout: float,
               cwd: str | None = None, **user_kwargs) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd, start_new_session=True, **user_kwargs,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    except (asyncio.TimeoutError, asyncio.CancelledError):
        try:
            proc.kill()
        except ProcessLookupError:  # it ended meanwhile; the cancellation must still propagate
            pass
        await proc.wait()
        raise
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class LocalRoute:
    """Slurm's client commands on the hub's machine, with the centre's SLURM_CONF."""

    kind = "local"

    def __init__(self, config: LocalScheduler):
        self.config = config

    def describe(self) -> str:
        return f"local ({self.config.slurm_conf})"

    async def run(self, argv: list[str], *, user: str | None, stdin: str | None = None,
                  env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> CommandResult:
        full_env = {"PATH": _scheduler_path(), "LANG": "C.UTF-8", "SLURM_CONF": self.config.slurm_conf,
                    **_job_env(env)}
        kwargs: dict = {}
        cwd = "/"
        if user is not None:
            _checked(ACCOUNT_NAME_RE, user, "user name")
            pw = pwd.getpwnam(user)
            full_env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
            cwd = pw.pw_dir if os.path.isdir(pw.pw_dir) else "/"
            if os.geteuid() == 0 and pw.pw_uid != 0:
                kwargs = {"user": pw.pw_uid, "group": pw.pw_gid,
                          "extra_groups": os.getgrouplist(user, pw.pw_gid)}
            elif os.geteuid() != pw.pw_uid:
                raise SchedulerError(
                    f"the hub runs as uid {os.geteuid()} and cannot submit as {user!r}: "
                    "run the hub as root or use an ssh route for this centre"
                )
        try:
            rc, out, err = await _run(argv, stdin=stdin, env=full_env, timeout=timeout, cwd=cwd, **kwargs)
        except asyncio.TimeoutError:
            raise SchedulerUnreachable(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        except FileNotFoundError:
            raise SchedulerUnreachable(f"{argv[0]} is not installed on the hub machine") from None
        return CommandResult(tuple(argv), rc, out, err)


class SshRoute:
    """Slurm's client commands on the centre's login node, as the user, over ssh."""

    kind = "ssh"

    def __init__(self, config: SshScheduler):
        self.config = config

    def describe(self) -> str:
        return f"ssh {self.config.host}:{self.config.port}"

    def ssh_argv(self, argv: list[str], user: str, env_names: list[str]) -> list[str]:
        c = self.config
        known = c.known_hosts_file
        options = [
            "BatchMode=yes", "IdentitiesOnly=yes", f"ConnectTimeout={c.connect_timeout_s}",
            "ServerAliveInterval=5", "ServerAliveCountMax=2", "LogLevel=ERROR",
            f"StrictHostKeyChecking={'yes' if known else 'accept-new'}",
        ]
        if known:
            options.append(f"UserKnownHostsFile={known}")
        options += [f"SendEnv={name}" for name in env_names]
        ssh = ["ssh", "-F", "/dev/null", "-i", c.key_file, "-p", str(c.port)]
        for option in options:
            ssh += ["-o", option]
        return ssh + ["-l", _checked(ACCOUNT_NAME_RE, user, "user name"), c.host, "--", shlex.join(argv)]

    async def run(self, argv: list[str], *, user: str | None, stdin: str | None = None,
                  env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> CommandResult:
        user = user or self.config.query_user
        if user is None:
            raise SchedulerError(
                f"login node {self.config.host}: set scheduler.query_user in the federation file "
                "for centre-wide queries"
            )
        job_env = _job_env(env)
        full_argv = self.ssh_argv(argv, user, sorted(job_env))
        full_env = {"PATH": _scheduler_path(), "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"), **job_env}
        try:
            rc, out, err = await _run(full_argv, stdin=stdin, env=full_env, timeout=timeout)
        except asyncio.TimeoutError:
            raise SchedulerUnreachable(
                f"login node {self.config.host}:{self.config.port} did not answer within {timeout:.0f} s"
            ) from None
        if rc == 255:
            raise SchedulerUnreachable(
                f"ssh to login node {self.config.host}:{self.config.port} as {user} failed: {err.strip()}"
            )
        return CommandResult(tuple(argv), rc, out, err)


def route_for(centre: Centre) -> LocalRoute | SshRoute:
    if isinstance(centre.scheduler, SshScheduler):
        return SshRoute(centre.scheduler)
    return LocalRoute(centre.scheduler)


# --------------------------------------------------------------------------- client


class SlurmClient:
    """High-level Slurm operations at one centre, over that centre's route."""

    def __init__(self, centre: Centre, route=None, timeout: float = DEFAULT_TIMEOUT_S):
        self.centre = centre
        self.route = route or route_for(centre)
        self.timeout = timeout

    async def _call(self, argv: list[str], user: str | None, **kwargs) -> CommandResult:
        SCHEDULER_QUERIES.labels(self.centre.id, argv[0]).inc()
        result = await self.route.run(argv, user=user, timeout=self.timeout, **kwargs)
        if result.returncode != 0 and is_unreachable(result):
            raise SchedulerUnreachable(
                f"{self.centre.id}: controller did not answer {argv[0]}: {slurm_message(result.stderr)}"
            )
        return result

    async def query(self, argv: list[str], user: str | None = None) -> str:
        """A read-only command's output; by default centre-wide (run as the hub, or the ssh
        route's query_user)."""
        result = await self._call(argv, user)
        if result.returncode != 0:
            raise SchedulerError(f"{self.centre.id}: {argv[0]} failed: {slurm_message(result.stderr)}")
        return result.stdout

    async def submit(self, job: JobSpec, script: str, user: str, env: dict[str, str]) -> str:
        result = await self._call(sbatch_argv(job), user, stdin=script, env=env)
        if result.returncode != 0:
            raise SchedulerError(slurm_message(result.stderr))
        return parse_sbatch(result.stdout)

    async def estimate_start(self, job: JobSpec, script: str, user: str) -> datetime:
        """When Slurm would start ``job`` now; SchedulerError if it never could."""
        result = await self._call(estimate_argv(job), user, stdin=script)
        start = parse_estimate(result.stderr)
        if result.returncode != 0 or start is None:
            raise SchedulerError(slurm_message(result.stderr))
        return start

    async def jobs(self, job_ids, user: str | None) -> dict[str, JobInfo]:
        """Jobs Slurm still knows; a job missing from the answer is gone."""
        result = await self._call(squeue_argv(job_ids), user)
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return {}
            raise SchedulerUnreachable(f"{self.centre.id}: squeue failed: {slurm_message(result.stderr)}")
        return parse_squeue(result.stdout)

    async def job(self, job_id: str, user: str | None) -> JobInfo | None:
        return (await self.jobs([job_id], user)).get(str(job_id))

    async def cancel(self, job_ids, user: str | None) -> None:
        result = await self._call(scancel_argv(job_ids), user)
        if result.returncode != 0 and "already completing or completed" not in result.stderr \
                and "Invalid job id" not in result.stderr:
            raise SchedulerError(slurm_message(result.stderr))

    async def nodes(self, user: str | None = None) -> list[NodeInfo]:
        return parse_sinfo_nodes(await self.query(sinfo_nodes_argv(), user))

    async def pending_count(self, user: str | None = None) -> int:
        return parse_pending(await self.query(pending_jobs_argv(), user))

    async def node_address(self, node: str, user: str | None) -> str:
        """Where the proxy reaches a node: the federation's map first, then Slurm's NodeAddr."""
        if node in self.centre.node_addresses:
            return self.centre.node_addresses[node]
        for info in await self.nodes(user):
            if info.name == node and info.address:
                return info.address
        return node
