"""How the hub runs a Slurm command at a centre: locally, or on the centre's login node over ssh.

Nothing here builds a shell string from user input: the local route execs argv directly (as
the user's Unix account, with the centre's SLURM_CONF), and the ssh route quotes every word
with shlex for the login node's shell. Whatever stops a command from running (a timeout, a
missing ssh binary, permission denied) is ``SchedulerUnreachable``: the centre did not answer.
A login node that refuses the user's login is ``LoginRefused``: that is an answer.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import dataclass

from ..federation import LOGIN_RE, LocalScheduler, SshScheduler
from ..logins import local_account, remember_remote_uid, remote_refusal, remote_uid
from .commands import SchedulerError, SchedulerUnreachable
from .sshmux import SshMasters, common_options

DEFAULT_TIMEOUT_S = 20.0
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_ENV_PREFIXES = ("JUPYTERHUB_", "JPY_")


class LoginRefused(SchedulerError):
    """The centre's login node refused the user's login (no such account, or the hub's key is
    not authorised for it)."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def job_env_name_ok(name: str) -> bool:
    """Whether a variable may travel to a job: JUPYTERHUB_* or JPY_* (a login node's sshd accepts
    only those, AcceptEnv), upper case letters, digits and _."""
    return name.startswith(_ENV_PREFIXES) and name.replace("_", "").isalnum() and name.isupper()


def _job_env(env: dict[str, str] | None) -> dict[str, str]:
    """Only the Jupyter variables travel to the job; the hub's own environment does not."""
    env = env or {}
    bad = [k for k in env if not job_env_name_ok(k)]
    if bad:
        raise ValueError(f"refusing to pass environment variables {bad} to a centre")
    return dict(env)


def _checked_login(login: str) -> str:
    if not isinstance(login, str) or not LOGIN_RE.fullmatch(login) or login == "root":
        raise ValueError(f"refusing to run a Slurm command as {login!r}")
    return login


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


async def _open(argv: list[str], what: str, stdin=None, stdout=None, **kwargs) -> asyncio.subprocess.Process:
    """``stdin``/``stdout``: a file descriptor to use instead of a pipe to the hub (one end of a
    pipe between two such processes, so their bytes pass no Python on the way)."""
    pipe = asyncio.subprocess.PIPE
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=pipe if stdin is None else stdin, stdout=pipe if stdout is None else stdout,
            stderr=pipe, start_new_session=True, **kwargs)
    except OSError as e:
        raise SchedulerUnreachable(f"{what} could not be run: {e.strerror or e}") from None


async def _run_or_unreachable(argv: list[str], what: str, timeout: float, **kwargs) -> tuple[int, str, str]:
    try:
        return await _run(argv, timeout=timeout, **kwargs)
    except asyncio.TimeoutError:
        raise SchedulerUnreachable(f"{what} did not answer within {timeout:.0f} s") from None
    except OSError as e:  # missing binary, permission denied, too many processes...
        raise SchedulerUnreachable(f"{what} could not be run: {e.strerror or e}") from None


# A directory the job writes into must exist before sbatch opens it; made as the user, with
# the path passed as an argument (never interpolated into the script).
_MKDIR_THEN_EXEC = 'mkdir -p -- "$1" && shift && exec "$@"'


class LocalRoute:
    """Slurm's client commands on the hub's machine, with the centre's SLURM_CONF."""

    kind = "local"

    def __init__(self, config: LocalScheduler):
        self.config = config

    def describe(self) -> str:
        return f"local ({self.config.slurm_conf})"

    async def run(self, argv: list[str], *, user: str | None, stdin: str | None = None,
                  env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                  make_dir: str | None = None) -> CommandResult:
        command, full_env, cwd, kwargs = self._prepare(argv, user, env, make_dir)
        rc, out, err = await _run_or_unreachable(command, argv[0], timeout, stdin=stdin, env=full_env,
                                                 cwd=cwd, **kwargs)
        return CommandResult(tuple(argv), rc, out, err)

    async def open(self, argv: list[str], *, user: str, stdin=None, stdout=None) -> asyncio.subprocess.Process:
        """``argv`` started as ``user`` with its stdin, stdout and stderr as pipes (a stream of
        bytes through the hub: the workspace's transfers), or ``stdin``/``stdout`` as given."""
        command, full_env, cwd, kwargs = self._prepare(argv, user, None, None)
        return await _open(command, argv[0], stdin, stdout, env=full_env, cwd=cwd, **kwargs)

    def _prepare(self, argv: list[str], user: str | None, env: dict[str, str] | None,
                 make_dir: str | None) -> tuple[list[str], dict[str, str], str, dict]:
        full_env = {"PATH": f"{self.config.commands_dir}:{_SYSTEM_PATH}", "LANG": "C.UTF-8",
                    "SLURM_CONF": self.config.slurm_conf, **_job_env(env)}
        kwargs: dict = {}
        cwd = "/"
        if user is not None:
            account = local_account(_checked_login(user))
            if account is None:
                raise LoginRefused(f"there is no account {user!r} on the hub's machine")
            if account.uid == 0:
                raise ValueError(f"refusing to run a Slurm command as uid 0 ({user!r})")
            full_env.update(HOME=account.home, USER=user, LOGNAME=user)
            cwd = account.home if os.path.isdir(account.home) else "/"
            if os.geteuid() == 0:
                kwargs = {"user": account.uid, "group": account.gid, "extra_groups": list(account.groups)}
            elif os.geteuid() != account.uid:
                raise SchedulerError(
                    f"the hub runs as uid {os.geteuid()} and cannot run commands as {user!r}: "
                    "run the hub as root or use an ssh route for this centre")
        command = list(argv)
        if make_dir is not None:
            command = ["/bin/sh", "-c", _MKDIR_THEN_EXEC, "fedhub", make_dir, *argv]
        return command, full_env, cwd, kwargs


class SshRoute:
    """Slurm's client commands on the centre's login node, as the user's login, over ssh."""

    kind = "ssh"

    def __init__(self, config: SshScheduler, multiplex: bool = True, logins=None):
        self.config = config
        self.multiplex = multiplex  # False: a connection per command (the benchmark's baseline)
        self.min_uid = getattr(logins, "min_uid", None)
        self.mapped = frozenset(getattr(logins, "map", {}).values())  # explicit: the operator's word

    def describe(self) -> str:
        return f"ssh {self.config.host}:{self.config.port}"

    def ssh_argv(self, remote: str, user: str, env_names: list[str], mux: list[str] = ()) -> list[str]:
        """ssh argv for ``remote`` as ``user``: pinned host keys, only the named variables sent,
        and ``mux`` (a master's client options) to run as a session over the hub's connection."""
        ssh = ["ssh", *common_options(self.config), *mux]
        for name in env_names:
            ssh += ["-o", f"SendEnv={name}"]
        return ssh + ["-l", _checked_login(user), self.config.host, "--", remote]

    async def run(self, argv: list[str], *, user: str | None, stdin: str | None = None,
                  env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                  make_dir: str | None = None) -> CommandResult:
        user = user or self.config.query_user
        full_argv, full_env, where = await self._prepare(argv, user, env, make_dir, timeout)
        rc, out, err = await _run_or_unreachable(full_argv, where, timeout, stdin=stdin, env=full_env)
        return self._answer(argv, user, where, rc, out, err)

    async def open(self, argv: list[str], *, user: str, stdin=None, stdout=None) -> asyncio.subprocess.Process:
        """``argv`` started on the login node as ``user``, over the hub's connection, with its
        stdin, stdout and stderr as pipes (a stream of bytes through the hub), or
        ``stdin``/``stdout`` as given."""
        full_argv, full_env, where = await self._prepare(argv, user, None, None, DEFAULT_TIMEOUT_S)
        return await _open(full_argv, where, stdin, stdout, env=full_env)

    async def _prepare(self, argv: list[str], user: str, env: dict[str, str] | None, make_dir: str | None,
                       timeout: float) -> tuple[list[str], dict[str, str], str]:
        if user != self.config.query_user and user not in self.mapped:
            await self._check_account(_checked_login(user), timeout)
        job_env = _job_env(env)
        remote = shlex.join(argv)
        if make_dir is not None:
            remote = f"{shlex.join(['mkdir', '-p', '--', make_dir])} && {remote}"
        mux: list[str] = []
        if self.multiplex:
            master = SshMasters.get(self.config, _checked_login(user))
            mux = master.client_options() if await master.ensure() else []
        full_argv = self.ssh_argv(remote, user, sorted(job_env), mux)
        full_env = {"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"), **job_env}
        return full_argv, full_env, f"login node {self.config.host}:{self.config.port}"

    def _answer(self, argv: list[str], user: str, where: str, rc: int, out: str, err: str) -> CommandResult:
        if rc == 255:
            if "Permission denied" in err:
                raise LoginRefused(f"{where} refused login {user!r} for the hub's key")
            if "Host key verification failed" in err or "REMOTE HOST IDENTIFICATION HAS CHANGED" in err:
                raise SchedulerUnreachable(
                    f"{where} did not present the pinned host key (see {self.config.known_hosts_file}); "
                    "the hub will not talk to it until the key is checked")
            raise SchedulerUnreachable(f"ssh to {where} as {user} failed: {err.strip()}")
        return CommandResult(tuple(argv), rc, out, err)

    async def _check_account(self, login: str, timeout: float) -> None:
        """Before the hub acts as ``login`` at this centre: its uid, read through the hub's query
        connection (kept a minute), must not be 0 nor a system account's. A claim of ``slurm``
        or ``munge`` must not become a job of theirs."""
        node = f"{self.config.host}:{self.config.port}"
        known, uid = remote_uid(node, login)
        if not known:
            result = await self.run(["getent", "passwd", login], user=None, timeout=timeout)
            fields = result.stdout.strip().split(":")
            if result.returncode == 0 and len(fields) >= 3 and fields[0] == login and fields[2].isdigit():
                uid = int(fields[2])
            elif result.returncode == 2:  # getent: no such key
                uid = None
            else:
                raise SchedulerUnreachable(f"login node {self.config.host} could not say who {login!r} is "
                                           f"(getent passwd: {result.stderr.strip() or result.returncode})")
            remember_remote_uid(node, login, uid)
        reason = remote_refusal(uid, self.min_uid)
        if reason is not None:
            raise LoginRefused(f"login {login!r} at {self.config.host} is not used: {reason}")


def route_for(scheduler: LocalScheduler | SshScheduler, logins=None) -> LocalRoute | SshRoute:
    """The route to a centre's Slurm; ``logins`` (the centre's LoginMapping) bounds the uids an
    ssh route acts as."""
    if isinstance(scheduler, SshScheduler):
        return SshRoute(scheduler, logins=logins)
    return LocalRoute(scheduler)
