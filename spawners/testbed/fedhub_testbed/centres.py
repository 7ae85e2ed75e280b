"""Real Slurm centres on loopback, for the demo and the test fixtures (one copy for both).

Each centre is its own Slurm cluster (slurmctld + one slurmd, own ports, state and config),
all sharing one munged. A centre may be reached "through its login node": an sshd whose
sessions see that centre's SLURM_CONF, as on a real login node. A firewalled centre's login
node and compute node each live in their own network namespace (``firewall.py``): the hub
reaches it only through ssh, and its jobs reach the hub only through the hub's forwards. The
result is a federation file that FedHub's hub reads like any operator's. A centre may have a home
of its own: its slurmd and login sshd run in a mount namespace with its own directory bound over
/home, so, as between real centres, a file written there is not seen anywhere else; the hub's
machine shares its /home only with the centre it runs Slurm commands for locally.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedhub.slurm.tunnels import free_local_port
from .firewall import PrivateNetwork

MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
MUNGE_USERS_LOCK = "/tmp/fedhub-munge-users.lock"
QUERY_USER = "fedhub"  # login-node account the hub uses for centre-wide queries
# where a firewalled centre's jobs find the hub: these ports on its login node's inner address
TUNNEL_HUB_API_PORT = 8081


@dataclass
class PartitionSpec:
    name: str
    max_cores: int
    max_memory: str
    max_walltime: str
    charge_rate: float = 1.0
    default: bool = False
    oversubscribe: int = 0  # jobs that may share a core (a classroom partition of small notebook servers)
    idle_timeout: str = ""  # an idle server there is culled after this ("": the centre's, never by default)
    kernel_idle_timeout: str = ""  # a kernel at another centre, of a server there, likewise


@dataclass
class CentreSpec:
    id: str
    name: str
    cpus: int
    memory_mb: int
    partitions: list[PartitionSpec]
    route: str = "local"  # or "ssh"
    login_template: str | None = None
    login_map: dict[str, str] = field(default_factory=dict)
    accounting: bool = False  # slurmdbd accounting with enforced associations and limits
    firewalled: bool = False  # ssh only: compute node on a private network behind the login node
    private_tmp: bool = False  # each job its own /tmp and /dev/shm (job_container/tmpfs), as many centres do
    extend: str = ""  # how much in all the hub may add to a server's time limit there ("": it may not)
    idle_timeout: str = ""  # servers idle this long are culled ("": never, unless a partition says so)
    kernel_idle_timeout: str = ""  # kernels at other centres of its servers, likewise
    workspace_folder: str = ""  # the federation file's workspace.folder there ("": the default, fedhub)
    own_home: bool = False  # its nodes and login node see a /home of their own, not this machine's
    node_nice: int = 0  # run the node's jobs at this niceness (a benchmark's compute node that is not the hub's machine)

    def __post_init__(self):
        if self.private_tmp and self.own_home:
            raise ValueError(f"centre {self.id}: job_container/tmpfs fails about every other job inside the mount "
                             "namespace that gives a centre its own home; give one of the two to another centre")
        if self.firewalled and self.route != "ssh":
            raise ValueError(f"centre {self.id}: a firewalled centre is reached through its login node (route='ssh')")
        if self.own_home and self.route != "ssh":
            # a local route runs the hub's commands with this machine's /home, as the hub's own centre
            raise ValueError(f"centre {self.id}: a centre with a home of its own is reached through its login node")


def demo_centres() -> list[CentreSpec]:
    """Three small centres that differ in size, partitions, route and accounting."""
    return [
        CentreSpec("alpha", "Alpha Supercomputing Centre", cpus=4, memory_mb=8192, accounting=True, extend="02:00:00",
                   private_tmp=True, idle_timeout="01:00:00", kernel_idle_timeout="00:30:00", partitions=[
            PartitionSpec("cpu", 4, "6G", "08:00:00", 1.0, default=True),
            PartitionSpec("debug", 2, "2G", "00:30:00", 0.5, idle_timeout="00:15:00"),
        ]),
        CentreSpec("beta", "Beta National Lab (behind its login node)", cpus=8, memory_mb=16384, route="ssh",
                   firewalled=True, own_home=True, partitions=[
            PartitionSpec("batch", 8, "12G", "1-00:00:00", 1.0, default=True),
            PartitionSpec("short", 2, "4G", "01:00:00", 0.8),
        ]),
        CentreSpec("gamma", "Gamma University HPC", cpus=2, memory_mb=4096, accounting=True,
                   route="ssh", own_home=True, partitions=[
            PartitionSpec("small", 2, "3G", "02:00:00", 1.5, default=True),
        ]),
    ]


free_port = free_local_port

def ensure_unix_user(name: str) -> None:
    """Hub users run their jobs as Unix users; create one (home, unlocked for ssh) if missing."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    # '*' = no password but not locked, so key-only sshd logins work (UsePAM no refuses '!')
    subprocess.run(["usermod", "-p", "*", name], check=True)


def _people() -> list[str]:
    """This machine's people (uid 1000 and up, homes under /home): each has a home at every centre,
    as a centre makes one with each account."""
    return [p.pw_name for p in pwd.getpwall()
            if 1000 <= p.pw_uid < 60000 and p.pw_dir.startswith("/home/") and p.pw_dir.count("/") == 2]


def _wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _signal_pidfile(pidfile: Path, sig=signal.SIGTERM) -> int | None:
    """Send ``sig`` to the daemon named in ``pidfile``; return its pid if it was running."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, sig)
        return pid
    except (OSError, ValueError):
        return None


def _pid_gone(pid: int) -> bool:
    """Whether the process has exited. A daemon this process started stays a zombie until it is
    reaped, and a zombie still takes signals: reap our own, and count any zombie as gone (else
    every stop waited out its whole timeout)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (a daemon that forked away), or reaped already
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _wait_gone(pids, timeout: float = 10) -> None:
    pids = [p for p in pids if p]
    try:
        _wait_for(lambda: all(_pid_gone(p) for p in pids), timeout, f"pids {pids} to exit")
    except TimeoutError:
        for pid in pids:
            if not _pid_gone(pid):
                os.kill(pid, signal.SIGKILL)


def _kill_pidfile(pidfile: Path, timeout: float = 10) -> None:
    _wait_gone([_signal_pidfile(pidfile)], timeout)


class RunningCentre:
    """One Slurm cluster on loopback: its files, ports and daemons."""

    def __init__(self, spec: CentreSpec, root: Path, hostname: str, network: PrivateNetwork | None = None):
        self.spec = spec
        self.network = network  # firewalled: the login and compute node namespaces
        self.dir = root / spec.id
        self.hostname = hostname
        self.ctld_port = free_port()
        self.slurmd_port = free_port()
        self.node = f"{spec.id}-n1"
        self.conf = self.dir / "slurm.conf"
        self.ssh_port: int | None = None

    @property
    def scratch(self) -> Path:
        """Each user's storage at this centre (what the storage command measures)."""
        return self.dir / "scratch"

    @property
    def home(self) -> Path:
        """Where this machine sees the centre's /home: its own directory, or this machine's /home
        (the local route's centre, whose login node the hub runs on)."""
        return self.dir / "home" if self.spec.own_home else Path("/home")

    def home_of(self, user: str) -> Path:
        return self.home / Path(pwd.getpwnam(user).pw_dir).relative_to("/home")

    def make_homes(self, users) -> None:
        """Each user's (and the query login's) home at a centre with a home of its own: empty, theirs, 0700."""
        if not self.spec.own_home:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o755)
        for user in users:
            home = self.home_of(user)
            if not home.exists():
                home.mkdir(mode=0o700)
                shutil.chown(home, user, pwd.getpwnam(user).pw_gid)

    def with_home(self, argv: list[str]) -> list[str]:
        """``argv`` (a daemon of the centre) in a mount namespace where /home is the centre's own."""
        if not self.spec.own_home:
            return list(argv)
        return ["unshare", "--mount", "--propagation", "slave", "/bin/sh", "-c",
                'mount --bind "$0" /home && exec "$@"', str(self.home), *argv]

    def make_scratch(self, users) -> None:
        self.scratch.mkdir(exist_ok=True)
        self.scratch.chmod(0o755)
        for user in users:
            (self.scratch / user).mkdir(exist_ok=True)
            shutil.chown(self.scratch / user, user, user)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as the centre's operator runs it: on the login node's network if firewalled."""
        return self.network.in_login(argv) if self.network else list(argv)

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a Slurm command at this centre as root (with ``SLURM_CONF``), output captured."""
        return subprocess.run(self.command(argv), env=self.env, capture_output=True, text=True, **kwargs)

    @property
    def controller_address(self) -> str:
        return self.network.login_inner_address if self.network else "127.0.0.1"

    @property
    def node_address(self) -> str:
        return self.network.node_address if self.network else "127.0.0.1"

    def write_config(self, first_job_id: int, dbd_port: int | None = None) -> None:
        for sub in ("state", "spool", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        s = self.spec
        lines = [
            f"ClusterName={s.id}",
            f"SlurmctldHost={self.hostname}({self.controller_address})",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "MailProg=/bin/true",
            f"StateSaveLocation={self.dir / 'state'}",
            f"SlurmdSpoolDir={self.spool}",
            f"SlurmctldPidFile={self.dir / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.dir / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.dir / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.dir / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=batch_sched_delay=0,sched_interval=10,bf_interval=5",
            "SlurmdParameters=config_overrides",
            "EnforcePartLimits=ALL",
            "ReturnToService=2",
            "KillWait=5",
            "MinJobAge=300",
            "SlurmctldTimeout=30",
            "MessageTimeout=5",
            f"FirstJobId={first_job_id}",
            *([
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={dbd_port}",
                "AccountingStorageEnforce=associations,limits",
                # as many centres keep them: so a job's environment and script must hold no secret
                "AccountingStoreFlags=job_script,job_env",
                "AccountingStorageTRES=gres/gpu",
                "JobAcctGatherType=jobacct_gather/linux",
                "JobAcctGatherFrequency=30",
                "PriorityType=priority/multifactor",
            ] if dbd_port else ["JobAcctGatherType=jobacct_gather/none"]),
            *(["JobContainerType=job_container/tmpfs", "PrologFlags=Contain"] if s.private_tmp else []),
            f"NodeName={self.node} NodeHostname={self.hostname} NodeAddr={self.node_address} "
            f"CPUs={s.cpus} RealMemory={s.memory_mb} State=UNKNOWN",
        ]
        for p in s.partitions:
            lines.append(
                f"PartitionName={p.name} Nodes={self.node} Default={'YES' if p.default else 'NO'} "
                f"MaxTime={p.max_walltime} DefaultTime=00:30:00 State=UP"
                + (f" OverSubscribe=FORCE:{p.oversubscribe}" if p.oversubscribe else "")
            )
        self.conf.write_text("\n".join(lines) + "\n")
        self.conf.chmod(0o644)
        if s.private_tmp:  # the plugin reads job_container.conf beside slurm.conf
            self.spool.mkdir(parents=True, exist_ok=True)
            (self.node_dir / "jobtmp").mkdir(exist_ok=True)
            (self.dir / "job_container.conf").write_text(f"AutoBasePath=true\nBasePath={self.node_dir / 'jobtmp'}\n")

    @property
    def node_dir(self) -> Path:
        """The compute node's own files. With private /tmp (job_container/tmpfs) they cannot live
        under /tmp, which a job no longer sees, nor may the plugin's base: /var/tmp then."""
        if self.spec.private_tmp:
            return Path("/var/tmp") / f"fedhub-node-{self.dir.parent.name}-{self.spec.id}"
        return self.dir

    @property
    def spool(self) -> Path:
        return self.node_dir / "spool"

    def start_controller(self) -> None:
        """Its complaints before it daemonizes stay out of the demo's terminal (its log has them;
        job_container/tmpfs without pam_slurm_adopt draws one that does not apply here)."""
        done = subprocess.run(self.command(["/usr/sbin/slurmctld", "-i"]), env=self.env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"slurmctld of {self.spec.id} did not start: {done.stderr.strip()[-2000:]}")

    def stop_controller(self) -> None:
        _kill_pidfile(self.dir / "slurmctld.pid")

    def start(self) -> None:
        self.start_controller()
        slurmd = ["/usr/sbin/slurmd", "-N", self.node]
        if self.spec.node_nice:  # its jobs inherit it: the node yields the machine's CPUs to the hub
            slurmd = ["nice", "-n", str(self.spec.node_nice), *slurmd]
        slurmd = self.with_home(slurmd)
        subprocess.run(self.network.in_node(slurmd) if self.network else slurmd, env=self.env, check=True)

    def node_state(self) -> str:
        r = self.run(["sinfo", "-h", "-N", "-o", "%T"])
        return r.stdout.strip() if r.returncode == 0 else ""

    def wait_ready(self, timeout: float = 30) -> None:
        _wait_for(lambda: self.node_state().startswith(("idle", "mixed", "allocated")),
                  timeout, f"node {self.node} of centre {self.spec.id} to become idle")

    def job_ids(self) -> list[str]:
        r = self.run(["squeue", "-h", "-o", "%i"])
        return r.stdout.split() if r.returncode == 0 else []

    def cancel_all_jobs(self, timeout: float = 15, wait: bool = True) -> None:
        ids = self.job_ids()
        if not ids:
            return
        self.run(["scancel", *ids])
        if not wait:
            return
        try:
            _wait_for(lambda: not self.job_ids(), timeout, f"jobs at {self.spec.id} to end", 0.3)
        except TimeoutError:
            pass

    def signal_daemons(self) -> list[int | None]:
        return [_signal_pidfile(self.dir / "slurmd.pid"), _signal_pidfile(self.dir / "slurmctld.pid")]

    def stop(self) -> None:
        self.cancel_all_jobs()
        _wait_gone(self.signal_daemons())


class Accounting:
    """One private MariaDB and one slurmdbd, serving every centre that keeps accounts."""

    def __init__(self, root: Path):
        self.dir = root / "accounting"
        self.run = self.dir / "run"  # written by mariadbd, which runs as mysql
        self.db_port = free_port()
        self.dbd_port = free_port()
        self.password = secrets.token_hex(12)

    def start(self) -> None:
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        self.run.mkdir(exist_ok=True)
        shutil.chown(self.dir / "db", "mysql", "mysql")
        shutil.chown(self.run, "mysql", "mysql")
        subprocess.run(["mariadb-install-db", f"--datadir={self.dir / 'db'}", "--user=mysql",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True)
        subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.dir / 'db'}",
             f"--socket={self.run / 'mysql.sock'}", f"--port={self.db_port}", "--bind-address=127.0.0.1",
             "--user=mysql", f"--pid-file={self.run / 'mysql.pid'}", f"--log-error={self.run / 'mysql.err'}",
             "--innodb-buffer-pool-size=64M", "--skip-log-bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        _wait_for(lambda: (self.run / "mysql.sock").exists(), 30, "MariaDB for slurmdbd")
        grants = "".join(
            f"CREATE USER 'slurm'@'{h}' IDENTIFIED BY '{self.password}'; "
            f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{h}'; " for h in ("127.0.0.1", "localhost"))
        subprocess.run(["mariadb", "--no-defaults", "-S", str(self.run / "mysql.sock"), "-u", "root", "-e", grants],
                       check=True, capture_output=True)
        conf = self.dir / "slurmdbd.conf"
        conf.write_text("\n".join([
            "DbdHost=localhost", "DbdAddr=127.0.0.1", f"DbdPort={self.dbd_port}", "SlurmUser=root",
            "AuthType=auth/munge", "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1",
            f"StoragePort={self.db_port}", "StorageUser=slurm", f"StoragePass={self.password}",
            "StorageLoc=slurm_acct_db", f"PidFile={self.dir / 'slurmdbd.pid'}",
            f"LogFile={self.dir / 'slurmdbd.log'}",
        ]) + "\n")
        conf.chmod(0o600)
        (self.dir / "slurm.conf").write_text("ClusterName=slurmdbd\n")  # slurmdbd looks beside SLURM_CONF
        subprocess.run(["/usr/sbin/slurmdbd"], env={**os.environ, "SLURM_CONF": str(self.dir / "slurm.conf")},
                       check=True)
        _wait_for(lambda: _port_open(self.dbd_port), 30, "slurmdbd")

    def register(self, centres: list["RunningCentre"], users: dict[str, str]) -> None:
        """Clusters, one Slurm account per user (``users``: unix user -> account) at each."""
        sacctmgr = lambda *args: subprocess.run(  # noqa: E731
            ["sacctmgr", "-i", *args], env=centres[0].env, check=True, capture_output=True, text=True)
        names = ",".join(c.spec.id for c in centres)
        sacctmgr("add", "cluster", *[c.spec.id for c in centres])
        for account in sorted(set(users.values())):
            sacctmgr("add", "account", account, f"cluster={names}")
        for user, account in sorted(users.items()):
            sacctmgr("add", "user", user, f"account={account}", f"defaultaccount={account}", f"cluster={names}")

    def stop(self) -> list[int | None]:
        return [_signal_pidfile(self.dir / "slurmdbd.pid"), _signal_pidfile(self.run / "mysql.pid")]


class LoginNode:
    """An sshd standing in for a centre's login node (key-only, own host key): on 127.0.0.1, or
    for a firewalled centre in the login namespace, at the address the hub reaches it by."""

    def __init__(self, centre: RunningCentre, ssh_dir: Path, hub_public_key: str):
        self.centre = centre
        self.dir = ssh_dir / centre.spec.id
        self.address = centre.network.login_address if centre.network else "127.0.0.1"
        self.port = free_port()
        self.hub_public_key = hub_public_key

    def start(self) -> str:
        """Start sshd; return the known_hosts line for it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        host_key = self.dir / "host_ed25519"
        if not host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
        authorized = self.dir / "authorized_keys"
        authorized.write_text(self.hub_public_key)
        authorized.chmod(0o644)
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the keys file is root-owned 0644 under /tmp (sticky, world-writable)
            "PermitRootLogin no",
            "AcceptEnv JUPYTERHUB_* JPY_*",
            f"SetEnv SLURM_CONF={self.centre.conf}",
            "X11Forwarding no",
            "AllowTcpForwarding yes",  # the hub's tunnels to the centre's nodes
            "GatewayPorts clientspecified",  # reverse forwards bound to the login node's inner address
            "LogLevel ERROR",
        ]) + "\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        subprocess.run(self.centre.command(self.centre.with_home(["/usr/sbin/sshd", "-f", str(config)])), check=True)
        _wait_for(lambda: _port_open(self.port, self.address), 10, f"sshd for {self.centre.spec.id}")
        self.centre.ssh_port = self.port
        pub = (self.dir / "host_ed25519.pub").read_text().split()
        return f"[{self.address}]:{self.port} {pub[0]} {pub[1]}\n"

    def stop(self) -> None:
        _kill_pidfile(self.dir / "sshd.pid")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def munge_running() -> bool:
    return MUNGE_SOCKET.exists() and subprocess.run(
        ["munge", "-n"], capture_output=True
    ).returncode == 0


class LocalFederation:
    """Start a set of centres, write their federation file, and stop everything on exit."""

    def __init__(self, specs: list[CentreSpec], root: Path | None = None, *,
                 singleuser_cmd: str, users: list[str] = (), hub_connect_url: str | None = None):
        self.specs = specs
        self.root = Path(root or tempfile.mkdtemp(prefix="fedhub-centres-", dir="/tmp"))
        self.hub_connect_url = hub_connect_url
        self.singleuser_cmd = singleuser_cmd
        self.users = list(users)
        self.hostname = socket.gethostname().split(".")[0]
        self.centres: dict[str, RunningCentre] = {}
        self.login_nodes: dict[str, LoginNode] = {}
        self.accounting: Accounting | None = None
        self.networks: dict[str, PrivateNetwork] = {}  # firewalled centres
        self.started_munge = False
        self.federation_file = self.root / "federation.yaml"
        self.hub_key = self.root / "ssh" / "hub_ed25519"
        self.known_hosts = self.root / "ssh" / "known_hosts"

    def __enter__(self) -> "LocalFederation":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # users' sbatch must read their centre's slurm.conf
        for parent in self.root.parents:
            if not parent.stat().st_mode & 0o001:
                raise PermissionError(
                    f"{parent} is not searchable by other users, so jobs and the login node cannot "
                    f"read the centres' files under {self.root}; choose a directory such as /tmp/fedhub-demo"
                )
        for user in self.users:
            ensure_unix_user(user)
        if any(s.route == "ssh" for s in self.specs):
            ensure_unix_user(QUERY_USER)
        self._start_munge()
        if any(s.accounting for s in self.specs):
            self.accounting = Accounting(self.root)
            self.accounting.start()
        for spec in self.specs:
            if spec.firewalled:
                self.networks[spec.id] = PrivateNetwork(spec.id)
                self.networks[spec.id].start()
        for i, spec in enumerate(self.specs):
            centre = RunningCentre(spec, self.root, self.hostname, self.networks.get(spec.id))
            centre.write_config(first_job_id=(i + 1) * 100_000,
                                dbd_port=self.accounting.dbd_port if spec.accounting else None)
            self.centres[spec.id] = centre
        accounted = [self.centres[s.id] for s in self.specs if s.accounting]
        if accounted:
            # root (blockers, the monitor) has an association from the start
            everyone = {QUERY_USER: "fedhub", **{u: self.slurm_account(u) for u in self.users}}
            self.accounting.register(accounted, everyone)
        for centre in self.centres.values():
            centre.make_homes([*self.users, QUERY_USER] if centre.spec.route == "ssh" else self.users)
            centre.make_homes(_people())
            centre.start()
            if centre.spec.accounting:
                centre.make_scratch(self.users)
        if any(s.route == "ssh" for s in self.specs):
            self._start_login_nodes()
        for centre in self.centres.values():
            centre.wait_ready()
        self.write_federation_file()

    def add_users(self, users) -> None:
        """Unix users made after the centres started (a class's students): their homes at every centre."""
        for user in users:
            ensure_unix_user(user)
        for centre in self.centres.values():
            centre.make_homes(users)

    @staticmethod
    def slurm_account(user: str) -> str:
        """The Slurm charge account a local user charges (the federation file's template)."""
        return f"proj_{user}"

    def _start_munge(self) -> None:
        # Every local federation holds this lock shared while it runs; munged is stopped only by
        # the one that started it, and only when no other (a demo beside the tests) still uses it.
        self._munge_lock = open(MUNGE_USERS_LOCK, "a")
        fcntl.flock(self._munge_lock, fcntl.LOCK_SH)
        if munge_running():
            return
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
        _wait_for(munge_running, 10, "munged")
        self.started_munge = True

    def _start_login_nodes(self) -> None:
        ssh_dir = self.root / "ssh"
        ssh_dir.mkdir(exist_ok=True)
        ssh_dir.chmod(0o755)
        if not self.hub_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fedhub-hub",
                            "-f", str(self.hub_key)], check=True)
        public = (self.hub_key.with_suffix(".pub")).read_text()
        lines = []
        for spec in self.specs:
            if spec.route == "ssh":
                node = LoginNode(self.centres[spec.id], ssh_dir, public)
                lines.append(node.start())
                self.login_nodes[spec.id] = node
        self.known_hosts.write_text("".join(lines))

    def federation_document(self) -> dict:
        centres = []
        for spec in self.specs:
            running = self.centres[spec.id]
            if spec.route == "ssh":
                scheduler = {"type": "ssh", "host": self.login_nodes[spec.id].address, "port": running.ssh_port,
                             "key_file": str(self.hub_key), "known_hosts_file": str(self.known_hosts),
                             "query_user": QUERY_USER}
            else:
                scheduler = {"type": "local", "slurm_conf": str(running.conf)}
            logins: dict = {}
            if spec.login_template:
                logins["template"] = spec.login_template
            if spec.login_map:
                logins["map"] = dict(spec.login_map)
            entry = {
                "id": spec.id,
                "name": spec.name,
                "scheduler": scheduler,
                **({"hub_connect_url": self.hub_connect_url} if self.hub_connect_url else {}),
                "singleuser_cmd": self.singleuser_cmd,
                "node_addresses": {running.node: running.node_address},
                "partitions": [
                    {"name": p.name, "max_cores": p.max_cores, "max_memory": p.max_memory,
                     "max_walltime": p.max_walltime, "charge_rate": p.charge_rate,
                     **({"idle_timeout": p.idle_timeout} if p.idle_timeout else {}),
                     **({"kernel_idle_timeout": p.kernel_idle_timeout} if p.kernel_idle_timeout else {})}
                    for p in sorted(spec.partitions, key=lambda p: not p.default)
                ],
            }
            if logins:
                entry["logins"] = logins
            sessions = {**({"extend": spec.extend, "extend_step": "00:30:00"} if spec.extend else {}),
                        **({"idle_timeout": spec.idle_timeout} if spec.idle_timeout else {}),
                        **({"kernel_idle_timeout": spec.kernel_idle_timeout} if spec.kernel_idle_timeout else {})}
            if sessions:
                entry["sessions"] = sessions
            if spec.workspace_folder:
                entry["workspace"] = {"folder": spec.workspace_folder}
            if running.network:
                entry.pop("hub_connect_url", None)  # its nodes reach the hub through the login node
                entry["network"] = {"mode": "tunnel", "login_node_address": running.network.login_inner_address,
                                    "hub_api_port": TUNNEL_HUB_API_PORT}
            if spec.accounting:
                entry["accounting"] = {
                    "charge_account_template": self.slurm_account("{username}"), "period": "monthly",
                    "storage_command": ["/usr/bin/du", "-b", "--max-depth=1", str(running.scratch)],
                    "storage_limit": "1G",
                }
            centres.append(entry)
        return {"version": 1, "centres": centres}

    def write_federation_file(self) -> Path:
        self.federation_file.write_text(
            "# Written by FedHub's local federation (demo and tests); edit freely.\n"
            + yaml.safe_dump(self.federation_document(), sort_keys=False)
        )
        return self.federation_file

    def stop(self) -> None:
        """Cancel every job, then stop all daemons together (each takes seconds to exit)."""
        for centre in self.centres.values():
            centre.cancel_all_jobs(wait=False)
        for centre in self.centres.values():
            centre.cancel_all_jobs()
        pids = [_signal_pidfile(node.dir / "sshd.pid") for node in self.login_nodes.values()]
        if self.login_nodes:  # hubs' persistent connections to these login nodes end with them
            subprocess.run(["pkill", "-TERM", "-f", f"^ssh .*-i {self.hub_key} .* -M -N "], capture_output=True)
        for centre in self.centres.values():
            pids += centre.signal_daemons()
        if self.accounting is not None:
            pids += self.accounting.stop()
        _wait_gone(pids)
        for centre in self.centres.values():
            if centre.spec.private_tmp:
                shutil.rmtree(centre.node_dir, ignore_errors=True)
        for network in self.networks.values():
            network.stop()
        lock, self._munge_lock = getattr(self, "_munge_lock", None), None
        if lock is None:
            return
        fcntl.flock(lock, fcntl.LOCK_UN)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # anyone else still using munged?
            if self.started_munge:
                subprocess.run(["pkill", "-TERM", "-u", "munge", "-x", "munged"], capture_output=True)
        except BlockingIOError:
            pass  # another federation on this machine still needs it
        finally:
            lock.close()

    def describe(self) -> str:
        return json.dumps({cid: {"slurm_conf": str(c.conf), "ssh_port": c.ssh_port,
                                 "network": c.network.login_ns if c.network else None}
                           for cid, c in self.centres.items()}, indent=2)
