"""Slurm's commands as argv lists, and readers of their output. Pure: no I/O.

Every value is re-checked before it becomes an argument, so a bug upstream cannot inject an
option; output that does not parse is an error (``UnreadableOutput``), never "the job is gone".
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from ..federation import GRES_RE, LOGIN_RE, SLURM_NAME_RE
from ..units import format_walltime

# Reason last: it is free text that may contain the separator, so it takes the rest of the line.
JOB_FORMAT = "%i|%T|%B|%S|%e|%r"
# This hub's jobs at a centre (the sweep, and finding a submission whose answer was lost). Any
# centre user can submit a job with this hub's name and a comment holding a newline and a
# forged row, so each row is framed by a word chosen anew for every call (``owned_jobs_argv``),
# which nobody outside the hub can know: text inside a comment can never end a row. The login
# is Slurm's (%u, from the job's uid), never the comment's.
OWNED_FIELDS = "%i|%u|%T|%V|%k"
NODE_FORMAT = "%N|%P|%T|%C|%o|%m|%e|%G"
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED"}
RUNNING_STATES = {"RUNNING"}
# Everything else (COMPLETING, COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED,
# OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, ...) means the job is gone or going.
_STATE_RE = re.compile(r"[A-Z_]+")

UNREACHABLE_PATTERNS = (
    "Unable to contact slurm controller",
    "Socket timed out on send/recv",
    "Slurm backup controller in standby mode",
    "Communication connection failure",
    "Zero Bytes were transmitted or received",
)
_GRES_REQUEST_RE = re.compile(GRES_RE.pattern + r":\d{1,4}")  # gres[:type]:count
_JOB_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_COMMENT_RE = re.compile(r"[A-Za-z0-9_.:%=-]{1,250}")
_OUTPUT_RE = re.compile(r"[A-Za-z0-9_./%-]{1,200}")
_JOB_ID_RE = re.compile(r"\d{1,12}")


class SchedulerUnreachable(RuntimeError):
    """The centre did not answer (controller down, login node unreachable, timeout)."""


class ControllerUnreachable(SchedulerUnreachable):
    """Slurm's command itself said it could not reach the controller: for sbatch, nothing was
    submitted (unlike a timeout, after which the job may exist)."""


# What Slurm's commands print when they never reached the controller at all.
NEVER_REACHED_PATTERNS = ("Unable to contact slurm controller",)


class UnreadableOutput(SchedulerUnreachable):
    """Slurm printed something FedHub cannot read: no answer, and certainly not "job gone"."""


class SchedulerError(RuntimeError):
    """Slurm answered and refused, e.g. a job the partition cannot run."""


@dataclass(frozen=True)
class JobSpec:
    """What sbatch is asked for. Built only from a validated request and the federation."""

    name: str  # identifies the hub (see job.JobOwner)
    partition: str
    cores: int
    memory_mb: int
    walltime_s: int
    gres: str | None = None  # e.g. "gpu:a100:2"
    output: str = "fedhub-%j.log"
    charge_account: str | None = None  # sbatch --account
    comment: str | None = None  # identifies the hub user, server and submission
    reservation: str | None = None  # sbatch --reservation (a class's session)


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str
    reason: str
    node: str | None
    start_time: datetime | None
    end_time: datetime | None = None  # a running job's walltime end (moves when an operator changes TimeLimit)

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
class OwnedJob:
    """One of this hub's jobs as squeue lists it (OWNED_FORMAT)."""

    job_id: str
    login: str
    state: str
    submitted: datetime | None
    comment: str


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
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"refusing to pass {what} {value!r} to Slurm")
    return value


def _checked_int(value: int, what: str, low: int = 1, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"refusing to pass {what} {value!r} to Slurm")
    return value


def _checked_job_ids(job_ids) -> list[str]:
    ids = [str(j) for j in job_ids]
    if not ids or not all(_JOB_ID_RE.fullmatch(j) for j in ids):
        raise ValueError(f"refusing to pass job ids {ids!r} to Slurm")
    return ids


def sbatch_argv(job: JobSpec, *, test_only: bool = False) -> list[str]:
    """sbatch arguments (``test_only``: Slurm's estimate of when it would start; nothing queued)."""
    argv = [
        "sbatch", "--test-only" if test_only else "--parsable",
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
    if job.charge_account:
        argv.append(f"--account={_checked(SLURM_NAME_RE, job.charge_account, 'charge account')}")
    if job.comment:
        argv.append(f"--comment={_checked(_COMMENT_RE, job.comment, 'comment')}")
    if job.reservation:
        argv.append(f"--reservation={_checked(SLURM_NAME_RE, job.reservation, 'reservation')}")
    return argv


def squeue_argv(job_ids) -> list[str]:
    return ["squeue", "--noheader", "--states=all", f"--jobs={','.join(_checked_job_ids(job_ids))}",
            f"--format={JOB_FORMAT}"]


_FRAME_RE = re.compile(r"FH[0-9a-f]{16}")


def new_frame() -> str:
    """A word that marks where each row of squeue's output begins and ends, for one call."""
    return "FH" + secrets.token_hex(8)


def owned_jobs_argv(job_name: str, frame: str) -> list[str]:
    """Every job named ``job_name`` (this hub's), of any user, in any state Slurm still lists;
    each row between two ``frame`` words."""
    return ["squeue", "--noheader", "--states=all", f"--name={_checked(_JOB_NAME_RE, job_name, 'job name')}",
            f"--format={_checked(_FRAME_RE, frame, 'frame')}{OWNED_FIELDS}{frame}"]


def scancel_argv(job_ids) -> list[str]:
    return ["scancel", *_checked_job_ids(job_ids)]


def sinfo_nodes_argv() -> list[str]:
    return ["sinfo", "--noheader", "--Node", f"--format={NODE_FORMAT}"]


def associations_argv(cluster: str, login: str) -> list[str]:
    """The Slurm accounts ``login`` may charge at ``cluster`` (their associations)."""
    return ["sacctmgr", "--noheader", "--parsable2", "show", "associations", f"cluster={cluster}",
            f"user={_checked(LOGIN_RE, login, 'login')}", "format=Account"]


def parse_associations(stdout: str) -> list[str]:
    """Account lines -> the distinct valid account names, sorted."""
    return sorted({line.strip() for line in stdout.splitlines() if SLURM_NAME_RE.fullmatch(line.strip())})


def pending_jobs_argv() -> list[str]:
    return ["squeue", "--noheader", "--states=PENDING", "--format=%i|%P"]


# --------------------------------------------------------------------------- parsers


def parse_sbatch(stdout: str) -> str:
    """'1234' or '1234;cluster' (sbatch --parsable) -> '1234'."""
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        raise UnreadableOutput("sbatch printed no job id")
    job_id = lines[-1].split(";")[0].strip()
    if not _JOB_ID_RE.fullmatch(job_id):
        raise UnreadableOutput(f"sbatch printed {lines[-1]!r}, not a job id")
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


def _squeue_rows(stdout: str) -> list[list[str]]:
    """Six '|'-separated fields per line (JOB_FORMAT), the last free text (it takes the rest of the
    line), the state read strictly. A line that does not read is UnreadableOutput, never skipped:
    a skipped line would look like a job that ended."""
    rows = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|", 5)
        if len(parts) != 6 or not _JOB_ID_RE.fullmatch(parts[0]):
            raise UnreadableOutput(f"squeue printed a line FedHub cannot read: {line[:200]!r}")
        rows.append(parts)
    return rows


def _state(job_id: str, text: str) -> str:
    state = text.split()[0].rstrip("+") if text.strip() else ""
    if not _STATE_RE.fullmatch(state):
        raise UnreadableOutput(f"squeue gave job {job_id} the state {text!r}")
    return state


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """JOB_FORMAT lines -> jobs Slurm still lists."""
    jobs = {}
    for job_id, state, node, start, end, reason in _squeue_rows(stdout):
        jobs[job_id] = JobInfo(
            job_id=job_id, state=_state(job_id, state),
            reason="" if reason in ("None", "(null)") else reason,
            node=None if node in ("n/a", "", "(null)") else node,
            start_time=_parse_time(start), end_time=_parse_time(end),
        )
    return jobs


def parse_owned_jobs(stdout: str, frame: str) -> list[OwnedJob]:
    """``owned_jobs_argv``'s rows -> this hub's jobs. Only text between two frame words is a row
    (a comment may hold newlines and '|'); anything else is UnreadableOutput. The login must read
    as a login."""
    rows = stdout.split(frame)
    if len(rows) % 2 == 0 or any(gap.strip() for gap in rows[0::2]):
        raise UnreadableOutput(f"squeue printed text outside its rows: {stdout[:200]!r}")
    jobs = []
    for row in rows[1::2]:
        parts = row.split("|", 4)
        if len(parts) != 5 or not _JOB_ID_RE.fullmatch(parts[0]) or not LOGIN_RE.fullmatch(parts[1]):
            raise UnreadableOutput(f"squeue printed a row FedHub cannot read: {row[:200]!r}")
        job_id, login, state, submitted, comment = parts
        jobs.append(OwnedJob(job_id, login, _state(job_id, state), _parse_time(submitted),
                             "" if comment == "(null)" else comment))
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


def is_unreachable(stderr: str) -> bool:
    return any(p in stderr for p in UNREACHABLE_PATTERNS)


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
