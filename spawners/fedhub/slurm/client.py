"""Slurm operations at one centre (submit, ask, cancel, estimate), over that centre's route.

Errors are split the way callers need them: ``SchedulerUnreachable`` (no answer: never a reason
to consider a job gone) versus ``SchedulerError`` (Slurm answered and said no).
"""

from __future__ import annotations

import re
import secrets
import shlex
from datetime import datetime

from ..federation import Centre
from ..metrics import SCHEDULER_QUERIES
from .commands import (NEVER_REACHED_PATTERNS, ControllerUnreachable, JobInfo, JobSpec, NodeInfo, OwnedJob, SchedulerError, SchedulerUnreachable, is_unreachable,
                       new_frame, owned_jobs_argv, parse_estimate,
                       associations_argv, parse_associations, parse_owned_jobs, parse_pending, parse_sbatch,
                       parse_sinfo_nodes, parse_squeue, pending_jobs_argv, sbatch_argv, scancel_argv,
                       sinfo_nodes_argv, slurm_message, squeue_argv)
from .routes import DEFAULT_TIMEOUT_S, CommandResult, route_for


# Environment variables that are the job's secrets: they go through a private file, not sbatch.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY")
_WRITE_PRIVATE = 'umask 077 && mkdir -p -- "${1%/*}" && cat > "$1"'
SECRETS_DIR = ".fedhub/secrets"
_SUBMISSION_RE = re.compile(r"[0-9a-f]{6,32}")  # slurm.job's submission tags name the files


def split_secrets(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the secrets, the rest) of a job's environment."""
    secret = {k: v for k, v in env.items() if _SECRET_NAME.search(k)}
    return secret, {k: v for k, v in env.items() if k not in secret}


def secrets_path(submission: str | None = None) -> str:
    """Where a submission's secrets wait for its job, in the login's home (named by the
    submission, so a cancel removes a file its job never read)."""
    name = submission if submission and _SUBMISSION_RE.fullmatch(submission) else secrets.token_hex(8)
    return f"{SECRETS_DIR}/{name}"


def secrets_file(secret: dict[str, str]) -> str:
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(secret.items()))


def with_secrets_from(script: str, path: str) -> str:
    """``script`` reading its secrets from ``path`` (in the login's home) first, and removing it."""
    first, _, rest = script.partition("\n")
    quoted = '"$HOME"/' + shlex.quote(path)
    read = (f"fedhub_secrets={quoted}\n"
            'if [ -f "$fedhub_secrets" ]; then set -a; . "$fedhub_secrets"; set +a; rm -f -- "$fedhub_secrets"; fi\n'
            "unset fedhub_secrets\n")
    return f"{first}\n{read}{rest}" if first.startswith("#!") else read + script


class SlurmClient:
    """High-level Slurm operations at one centre."""

    def __init__(self, centre: Centre, route=None, timeout: float = DEFAULT_TIMEOUT_S):
        self.centre = centre
        self.route = route or route_for(centre.scheduler, centre.logins)
        self.timeout = timeout

    async def _call(self, argv: list[str], user: str | None, **kwargs) -> CommandResult:
        SCHEDULER_QUERIES.labels(self.centre.id, argv[0]).inc()
        result = await self.route.run(argv, user=user, timeout=self.timeout, **kwargs)
        if result.returncode != 0 and is_unreachable(result.stderr):
            never = any(p in result.stderr for p in NEVER_REACHED_PATTERNS)
            raise (ControllerUnreachable if never else SchedulerUnreachable)(
                f"{self.centre.id}: controller did not answer {argv[0]}: {slurm_message(result.stderr)}"
            )
        return result

    async def command(self, argv: list[str], user: str | None = None) -> CommandResult:
        """Any checked Slurm command (e.g. scontrol for a class's reservation), its result as is;
        SchedulerUnreachable when the controller does not answer."""
        return await self._call(argv, user)

    async def query(self, argv: list[str], user: str | None = None) -> str:
        """A read-only command's output; by default centre-wide (run as the hub, or the ssh
        route's query user)."""
        result = await self._call(argv, user)
        if result.returncode != 0:
            raise SchedulerError(f"{self.centre.id}: {argv[0]} failed: {slurm_message(result.stderr)}")
        return result.stdout

    async def submit(self, job: JobSpec, script: str, login: str, env: dict[str, str],
                     output_dir: str | None = None, submission: str | None = None) -> str:
        """sbatch as ``login``; ``output_dir`` (relative to the login's home) is made first.

        The job's secrets (tokens, keys) never travel in its environment, which Slurm keeps and
        a centre may store in its accounting (AccountingStoreFlags=job_env): they go first into a
        file only the login can read, which the job's script reads and removes as it starts."""
        secret, plain = split_secrets(env)
        if secret:
            path = secrets_path(submission)
            await self.write_private(login, path, secrets_file(secret))
            script = with_secrets_from(script, path)
        result = await self._call(sbatch_argv(job), login, stdin=script, env=plain, make_dir=output_dir)
        if result.returncode != 0:
            raise SchedulerError(slurm_message(result.stderr))
        return parse_sbatch(result.stdout)

    async def write_private(self, login: str, path: str, content: str) -> None:
        """``content`` into ``path`` (relative to the login's home) as the login, mode 0600, in a
        directory made 0700: passed on stdin, never in an argument or the environment."""
        result = await self._call(["/bin/sh", "-c", _WRITE_PRIVATE, "fedhub", path], login, stdin=content)
        if result.returncode != 0:
            raise SchedulerError(f"{self.centre.id}: could not write the job's private settings for {login}: "
                                 f"{result.stderr.strip()[:200]}")

    async def estimate_start(self, job: JobSpec, script: str, login: str) -> datetime:
        """When Slurm would start ``job`` now; SchedulerError if it never could."""
        result = await self._call(sbatch_argv(job, test_only=True), login, stdin=script)
        start = parse_estimate(result.stderr)
        if result.returncode != 0 or start is None:
            raise SchedulerError(slurm_message(result.stderr))
        return start

    async def jobs(self, job_ids, user: str | None = None) -> dict[str, JobInfo]:
        """Jobs Slurm still lists; a job missing from a successful answer is gone."""
        result = await self._call(squeue_argv(job_ids), user)
        if result.returncode != 0:
            if "Invalid job id" in result.stderr:
                return {}
            raise SchedulerUnreachable(f"{self.centre.id}: squeue failed: {slurm_message(result.stderr)}")
        return parse_squeue(result.stdout)

    async def owned_jobs(self, job_name: str, user: str | None = None) -> list[OwnedJob]:
        """Every job called ``job_name`` at this centre (this hub's, whatever the login)."""
        frame = new_frame()
        return parse_owned_jobs(await self.query(owned_jobs_argv(job_name, frame), user), frame)

    async def cancel(self, job_ids, login: str | None, submissions=()) -> None:
        """scancel as ``login``; then the secrets files of ``submissions`` that their jobs never
        read (a job cancelled while it waited) are removed, as far as the centre lets us."""
        result = await self._call(scancel_argv(job_ids), login)
        if result.returncode != 0 and "already completing or completed" not in result.stderr \
                and "Invalid job id" not in result.stderr:
            raise SchedulerError(slurm_message(result.stderr))
        paths = [secrets_path(s) for s in submissions if s and _SUBMISSION_RE.fullmatch(s)]
        if paths and login:
            try:
                await self._call(["rm", "-f", "--", *paths], login)
            except (SchedulerUnreachable, SchedulerError, ValueError):
                pass  # the file is the user's, 0600; the next cancel or the job itself removes it

    async def nodes(self, user: str | None = None) -> list[NodeInfo]:
        return parse_sinfo_nodes(await self.query(sinfo_nodes_argv(), user))

    async def associations(self, login: str) -> list[str]:
        """The accounts ``login`` may charge here (asked as the hub's query login)."""
        return parse_associations(await self.query(associations_argv(self.centre.cluster, login), None))

    async def pending_count(self, user: str | None = None) -> int:
        return parse_pending(await self.query(pending_jobs_argv(), user))

    async def node_address(self, node: str, user: str | None = None) -> str:
        """Where the proxy reaches a node: the federation's map first, then Slurm's NodeAddr."""
        if node in self.centre.node_addresses:
            return self.centre.node_addresses[node]
        for info in await self.nodes(user):
            if info.name == node and info.address:
                return info.address
        return node
