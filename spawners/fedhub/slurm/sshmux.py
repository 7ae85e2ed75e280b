"""One persistent, multiplexed ssh connection per login node and login, owned by the hub.

Each command over a fresh ssh connection costs a key exchange (about 0.2 s here). The hub
instead keeps an OpenSSH ControlMaster per (login node, login) as its own child process and runs
every command as a multiplexed session over it (a few ms). OpenSSH rather than an async ssh
library: the centre's sshd sees the same client it sees from its users (pinned known_hosts,
SendEnv, the same ciphers), and forwards can be added to and removed from a live master
(``ssh -O forward/cancel``), which the tunnel mode needs. The master carries the SendEnv
patterns itself: OpenSSH filters a session's variables through the master's options.

Commands run as the user's own login (Slurm attributes a job to the uid that submits it, and
an independent centre grants the hub no sudo), so a centre has one master for the hub's query
login (the monitor, accounting, the sweep, and later the forwards) and one per user while that
user is active: a user's master closes after ``idle_s`` without commands.

Supervised: a master that dies is started again at the next command; if it cannot be, the
command reports the centre as not answering. ``close_all()`` and the hub's exit end the masters;
each process has its own control sockets, and a new master ends those of processes that are
gone (a restarted hub, its predecessor's).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import os
import signal
import stat
import tempfile
import time
from pathlib import Path

from .. import runtime
from ..federation import SshScheduler

log = logging.getLogger("JupyterHub.fedhub.ssh")  # the hub's handlers and level

_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# A control socket's path, with the suffix ssh adds while it makes one, must fit in 108 bytes.
_MAX_SOCKET_DIR = 56


class SocketDirError(RuntimeError):
    """The control sockets' directory is not the hub's alone; the message says what to do."""


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this process's user can enter, made 0700 if missing. One
    that exists with another owner, or open to others, or a symlink, is refused: whoever made it
    would receive the hub's ssh sessions, and the tokens they carry."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SocketDirError(f"{path} is not a directory (a link or file is there); remove it, and FedHub "
                             "makes the directory for its ssh control sockets itself")
    if info.st_uid != os.getuid():
        raise SocketDirError(f"{path} belongs to uid {info.st_uid}, not to the hub's uid {os.getuid()}; another "
                             "user made it, who would receive the hub's ssh sessions: remove it and find out who")
    if info.st_mode & 0o077:
        raise SocketDirError(f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; FedHub's ssh control sockets "
                             f"need a directory only the hub can enter: chmod 700 {path}")
    return path


def use_state_dir(state_dir: str) -> Path:
    """Keep the control sockets in ``<state_dir>/ssh`` (the hub, its services: a restarted
    process finds its predecessor's masters there and ends them)."""
    parent = Path(state_dir).absolute()
    if len(str(parent / "ssh")) > _MAX_SOCKET_DIR:
        raise SocketDirError(f"the state directory {parent} is too long a path for ssh's control sockets (at most "
                             f"{_MAX_SOCKET_DIR - 4} characters); choose a shorter c.FederatedSpawner.state_dir")
    parent.mkdir(parents=True, exist_ok=True)
    runtime.current().socket_dir = private_dir(parent / "ssh")
    return runtime.current().socket_dir


def socket_dir() -> Path:
    """Where this process's control sockets live: the state directory's, or (a command with no
    state directory) a fresh private directory nobody else could have made first."""
    shared = runtime.current()
    if shared.socket_dir is None:
        shared.socket_dir = Path(tempfile.mkdtemp(prefix="fedhub-ssh-"))
        atexit.register(_remove_if_empty, shared.socket_dir)
    return shared.socket_dir


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def common_options(config: SshScheduler) -> list[str]:
    """The ssh options every connection to this login node uses: keys pinned, nothing interactive."""
    options = ["BatchMode=yes", "IdentitiesOnly=yes", f"ConnectTimeout={config.connect_timeout_s}",
               "ServerAliveInterval=5", "ServerAliveCountMax=2", "LogLevel=ERROR", "StrictHostKeyChecking=yes",
               f"UserKnownHostsFile={config.known_hosts_file}", "GlobalKnownHostsFile=/dev/null"]
    argv = ["-F", "/dev/null", "-i", config.key_file, "-p", str(config.port)]
    for option in options:
        argv += ["-o", option]
    return argv


class ForwardError(RuntimeError):
    """A forward the login node would not make (port in use, forwarding not allowed)."""


def listening_sockets(port: int) -> set[str]:
    """The inodes of the sockets listening on ``port`` of this host's network namespace (any
    address), read from the kernel's tables: whoever holds them, the hub's or not."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds."""
    found = set()
    try:
        entries = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return found
    for entry in entries:
        try:
            link = os.readlink(entry.path)
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return found


def _local_port(kind: str, spec: str) -> int | None:
    """The port a forward listens on here (an "L" forward's first port), else None."""
    if kind != "L":
        return None
    parts = spec.split(":")
    return int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None


class SshMaster:
    """The hub's ControlMaster to one login node as one login."""

    def __init__(self, config: SshScheduler, login: str, idle_s: float | None):
        self.config = config
        self.login = login
        self.idle_s = idle_s  # None: keep open (the query login)
        self.digest = hashlib.sha256(repr((config, login)).encode()).hexdigest()[:20]
        # one socket per process: two live hubs (or a hub and a command) never share a master
        self.socket_name = f"{self.digest}-{os.getpid()}"
        self.proc: asyncio.subprocess.Process | None = None
        self.last_used = time.monotonic()
        self.starts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._idle_task: asyncio.Task | None = None
        self._supervisor: asyncio.Task | None = None
        self.forwards: set[tuple[str, str]] = set()  # ("L" or "R", ssh's spec), restored after a drop
        # forwards the login node or this host would not bind: (why, since when)
        self.refused: dict[tuple[str, str], tuple[str, str]] = {}
        self.closing = False
        self.last_error = ""

    def __repr__(self) -> str:
        return f"<ssh master {self.login}@{self.config.host}:{self.config.port}>"

    @property
    def socket(self) -> Path:
        return socket_dir() / self.socket_name

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and self.socket.exists()

    def client_options(self) -> list[str]:
        """Options that make an ssh command a session over this master (or, if the master is
        gone this instant, a connection of its own: never a failure for that reason alone)."""
        return ["-o", f"ControlPath={self.socket}", "-o", "ControlMaster=no"]

    def _bind_to_loop(self) -> None:
        """A master belongs to the event loop that started it (its process is watched there).
        In a new loop (the CLI, tests), the old one is ended and a new one started."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self.proc is not None:
                self.kill_now()
            self._loop, self._lock, self._idle_task, self._supervisor = loop, asyncio.Lock(), None, None

    def kill_now(self) -> None:
        """End the master at once, without the event loop (process exit, a loop that ended)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.socket.unlink(missing_ok=True)  # the master may remove it itself as it ends

    async def ensure(self) -> bool:
        """Start the master if it is not running; False (with the reason logged) if it cannot."""
        self._bind_to_loop()
        self.last_used = time.monotonic()
        if self.alive:
            return True
        async with self._lock:
            if self.alive:
                return True
            return await self._start()

    async def _start(self) -> bool:
        try:
            private_dir(socket_dir())  # checked again at each start: cheap, and nothing else may own it
        except SocketDirError as e:
            self.last_error = str(e)
            log.error("%r not started: %s", self, e)
            return False
        await self._end_orphans()
        self.socket.unlink(missing_ok=True)  # left by our own master that died
        # SendEnv patterns on the master too: a session's variables pass the master's own SendEnv
        # filter (OpenSSH's clientloop), so without them the server's API token would not travel.
        argv = ["ssh", *common_options(self.config), "-M", "-N", "-o", f"ControlPath={self.socket}",
                "-o", "ControlPersist=no", "-o", "SendEnv=JUPYTERHUB_*", "-o", "SendEnv=JPY_*",
                "-l", self.login, self.config.host]
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env={"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8",
                                                 "HOME": os.environ.get("HOME", "/root")},
            start_new_session=True)
        SshMasters.close_at_shutdown()
        self.starts += 1
        deadline = time.monotonic() + self.config.connect_timeout_s + 2
        while time.monotonic() < deadline:
            if self.socket.exists():
                if self.starts > 1:
                    log.warning("%r re-established (start %d)", self, self.starts)
                self._watch_idle()
                return True
            if self.proc.returncode is not None:
                break
            try:
                await asyncio.wait_for(self.proc.wait(), 0.02)
            except asyncio.TimeoutError:
                pass
        error = (await self.proc.stderr.read()).decode(errors="replace").strip() if self.proc.returncode is not None \
            else "no control socket in time"
        await self._kill()
        lines = [line.strip() for line in error.splitlines() if line.strip() and not line.startswith("@")]
        self.last_error = lines[-1] if lines else error  # ssh's verdict, not its banner
        log.warning("%r could not be opened: %s; commands use their own connections meanwhile", self, error)
        return False

    def _watch_idle(self) -> None:
        if self.idle_s is None or (self._idle_task is not None and not self._idle_task.done()):
            return
        self._idle_task = asyncio.ensure_future(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        while self.alive:
            idle = time.monotonic() - self.last_used
            if idle >= self.idle_s and not self.forwards:
                await self.close()
                return
            await asyncio.sleep(self.idle_s - idle + 0.1)

    async def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        self.socket.unlink(missing_ok=True)

    async def close(self) -> None:
        self.closing = True
        self.forwards.clear()
        try:
            if self._loop is not asyncio.get_running_loop():
                self.kill_now()
                return
            async with self._lock:
                await self._kill()
        finally:
            self.closing = False

    # ------------------------------------------------------------------ forwards

    async def _end_orphans(self) -> None:
        """End masters to the same login node and login whose process is gone (a hub that was
        stopped or killed): ssh detaches a master from its creator's process group."""
        for stale in socket_dir().glob(f"{self.digest}-*"):
            creator = stale.name.rsplit("-", 1)[1]
            if creator.isdigit() and int(creator) != os.getpid() and not os.path.exists(f"/proc/{creator}"):
                await self._control("-O", "exit", socket=stale)
                stale.unlink(missing_ok=True)

    async def _control(self, *args: str, socket: Path | None = None) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "ssh", "-o", f"ControlPath={socket or self.socket}", *args, self.config.host,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8"})
        out, err = await proc.communicate()
        return proc.returncode, (out + err).decode(errors="replace").strip()

    async def add_forward(self, kind: str, spec: str) -> None:
        """Add a forward (``kind`` "L": a port here to one beyond the login node; "R": a port on
        the login node to one here) to the live connection; kept and restored after a drop.
        ForwardError, naming the login node and ssh's reason, if it cannot be made."""
        if not await self.ensure():
            if "Host key verification failed" in self.last_error or "IDENTIFICATION HAS CHANGED" in self.last_error:
                raise ForwardError(f"{self.config.host}:{self.config.port} did not present the pinned host key "
                                   f"(see {self.config.known_hosts_file}); check the key with the centre")
            raise ForwardError(f"{self.config.host}:{self.config.port} cannot be reached as {self.login}: "
                               f"{self.last_error}")
        try:
            await self._forward(kind, spec)
        except ForwardError as e:
            self._note(kind, spec, str(e))
            raise
        self._note(kind, spec, "")
        self.forwards.add((kind, spec))
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.ensure_future(self._supervise())

    async def _forward(self, kind: str, spec: str) -> None:
        """Ask the master for the forward. A port on this host is asked for only when nobody
        holds it, and kept only when the listener that results is the master's own: a port
        someone else holds would receive what the proxy sends there (cookies, tokens)."""
        port = _local_port(kind, spec)
        if port is not None and listening_sockets(port):
            raise ForwardError(f"port {port} on the hub's host is held by another process; the forward {spec} "
                               "is not made (a port of the hub's that is free for a moment can be taken by "
                               "anyone on this host)")
        rc, message = await self._control("-O", "forward", f"-{kind}", spec)
        if rc != 0:
            raise ForwardError(f"{self.config.host}:{self.config.port} refused the forward {kind} {spec}: {message}")
        if port is not None:
            held = listening_sockets(port)
            proc = self.proc
            if not held or proc is None or not held <= sockets_of(proc.pid):
                await self._control("-O", "cancel", f"-{kind}", spec)
                raise ForwardError(f"port {port} on the hub's host was taken by another process as the forward "
                                   f"{spec} was made; it is not used")

    def _note(self, kind: str, spec: str, refused: str) -> None:
        """Keep what became of a forward, for the log and ``fedhub centres`` (``forwards.json``
        beside the control sockets)."""
        if refused:
            if self.refused.get((kind, spec), ("",))[0] == refused:
                return
            self.refused[(kind, spec)] = (refused, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        elif self.refused.pop((kind, spec), None) is not None:
            log.warning("%r: forward %s %s bound again", self, kind, spec)
        else:
            return
        record_forwards()

    async def cancel_forward(self, kind: str, spec: str) -> None:
        self.forwards.discard((kind, spec))
        if self.refused.pop((kind, spec), None) is not None:
            record_forwards()
        if self.alive:
            await self._control("-O", "cancel", f"-{kind}", spec)

    async def _supervise(self, backoff: float = 0.5, retry_s: float = 5.0) -> None:
        """While there are forwards: when the connection drops, open it again and restore them;
        a forward that could not be bound (someone holds its port) is tried again every
        ``retry_s`` s, and is not in use until then."""
        while self.forwards:
            proc = self.proc
            if proc is not None and proc.returncode is None:
                if not any(f in self.refused for f in self.forwards):
                    await proc.wait()
                else:
                    try:
                        await asyncio.wait_for(asyncio.shield(proc.wait()), retry_s)
                    except asyncio.TimeoutError:
                        await self._restore([f for f in self.forwards if f in self.refused])
                        continue
            if self.closing or not self.forwards:
                return
            log.warning("%r dropped; re-establishing it and its %d forward(s)", self, len(self.forwards))
            delay = backoff
            while self.forwards and not await self.ensure():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
            await self._restore(list(self.forwards))

    async def _restore(self, forwards: list[tuple[str, str]]) -> None:
        for kind, spec in forwards:
            try:
                await self._forward(kind, spec)
                self._note(kind, spec, "")
            except ForwardError as e:
                if self.refused.get((kind, spec), ("",))[0] != str(e):
                    log.error("%r could not restore forward %s %s (nothing is sent there until it is bound; "
                              "tried again every few seconds): %s", self, kind, spec, e)
                self._note(kind, spec, str(e))


class SshMasters:
    """Every master of this process, by (login node, login)."""

    _masters: dict[tuple, SshMaster] = {}

    @classmethod
    def get(cls, config: SshScheduler, login: str) -> SshMaster:
        # the whole configuration: an entry with other pinned keys must never reuse this connection
        key = (config, login)
        if key not in cls._masters:
            idle = None if login == config.query_user else 120.0
            cls._masters[key] = SshMaster(config, login, idle)
        return cls._masters[key]

    @classmethod
    async def close_all(cls) -> None:
        await asyncio.gather(*(m.close() for m in cls._masters.values()))

    @classmethod
    def running(cls) -> list[SshMaster]:
        return [m for m in cls._masters.values() if m.alive]

    _shutdown_watch: asyncio.Task | None = None

    @classmethod
    def close_at_shutdown(cls) -> None:
        """Close the masters on their loop when its owner cancels every task at shutdown (as
        JupyterHub and asyncio.run do), so no ssh process or transport outlives the loop."""
        watch = cls._shutdown_watch
        if watch is not None and not watch.done() and watch.get_loop() is asyncio.get_running_loop():
            return

        async def wait_for_shutdown():
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                await cls.close_all()
                raise
        cls._shutdown_watch = asyncio.ensure_future(wait_for_shutdown())

    @classmethod
    def kill_all_now(cls) -> None:
        for master in cls._masters.values():
            master.kill_now()


def forwards_file(state_dir: str | Path | None = None) -> Path | None:
    """Where the hub keeps the forwards it could not bind (``<state_dir>/ssh/forwards.json``)."""
    if state_dir is not None:
        return Path(state_dir) / "ssh" / "forwards.json"
    where = runtime.current().socket_dir
    return where / "forwards.json" if where is not None else None


def record_forwards() -> None:
    """Write every refused forward of this process's masters (a command without a state
    directory writes nothing)."""
    path = forwards_file()
    if path is None:
        return
    from ..statedir import write_private_json
    refused = [{"host": m.config.host, "port": m.config.port, "login": m.login, "kind": kind, "spec": spec,
                "reason": reason, "since": since}
               for m in SshMasters._masters.values() for (kind, spec), (reason, since) in m.refused.items()]
    try:
        write_private_json(path, {"pid": os.getpid(), "refused": refused}, durable=False)
    except OSError as e:
        log.warning("could not record the forwards' state in %s: %s", path, e)


def refused_forwards(state_dir: str | Path) -> list[dict]:
    """The forwards the hub running on ``state_dir`` could not bind, as it last wrote them."""
    path = forwards_file(state_dir)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    try:
        os.kill(int(data.get("pid", 0)), 0)
    except (OSError, ValueError):
        return []  # that hub is gone
    return list(data.get("refused", []))


atexit.register(SshMasters.kill_all_now)  # the hub or a command ending leaves no ssh process behind
