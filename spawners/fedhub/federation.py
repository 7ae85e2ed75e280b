"""The federation model: centres, their partitions and limits, and how hub users map to them.

Everything else in FedHub reads this validated, immutable model and never the raw YAML, so a
mistake in the operator's file is reported once, at hub start, with the path of the bad field
(``centres[1].partitions[0].max_cores``) and what is allowed there. Pure: no I/O but reading
the file.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from . import runtime
from .i18n import _
from .units import format_memory_mb, format_walltime, parse_memory_mb, parse_walltime

CENTRE_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
# Slurm partition, gres and node names, and Unix account names, as FedHub accepts them:
# nothing a shell or Slurm's option parser treats specially.
SLURM_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LOGIN_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
CLAIM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
GRES_RE = re.compile(r"[a-z][a-z0-9_]{0,31}(:[A-Za-z0-9_.-]{1,32})?")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9a-fA-F:]+\]")
# All of these are used with fullmatch: `match` with `$` accepts a trailing newline.


class FieldError(ValueError):
    """A field of an operator's file (or API body) that cannot be used: ``path`` names the field
    (``centres[1].partitions[0].max_cores``), ``message`` what is allowed there."""

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}")


class FederationError(FieldError):
    """A federation file that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class GpuKind:
    """One kind of accelerator a partition offers (GPU, DCU, MLU...), requested as Slurm gres."""

    type: str  # what users pick, e.g. "a100" or "dcu"
    gres: str  # the gres name Slurm expects, e.g. "gpu:a100" or "dcu"
    max: int  # most a single job may ask for


@dataclass(frozen=True)
class Partition:
    name: str
    max_cores: int
    max_memory_mb: int
    max_walltime_s: int
    charge_rate: float = 1.0
    gpus: tuple[GpuKind, ...] = ()
    description: str = ""
    idle_timeout_s: int | None = None  # the centre's sessions.idle_timeout unless given (0: never culled)
    kernel_idle_timeout_s: int | None = None  # likewise sessions.kernel_idle_timeout

    def gpu(self, gpu_type: str | None) -> GpuKind | None:
        """The accelerator a request means: its ``gpu_type``, or the partition's first kind when
        the request names none. The one place this is decided (form, options, placement, job)."""
        if not gpu_type:
            return self.gpus[0] if self.gpus else None
        return next((g for g in self.gpus if g.type == gpu_type), None)

    def gres(self, gpu_type: str | None, count: int) -> str | None:
        """sbatch --gres for ``count`` accelerators of the kind the request means, e.g. 'gpu:a100:2'."""
        kind = self.gpu(gpu_type) if count else None
        return f"{kind.gres}:{count}" if kind else None

    def limits_text(self) -> str:
        text = _("up to {cores} cores, {memory} memory, {walltime} walltime").format(
            cores=self.max_cores, memory=format_memory_mb(self.max_memory_mb),
            walltime=format_walltime(self.max_walltime_s))
        if self.gpus:
            text += ", " + ", ".join(f"{g.max} x {g.type}" for g in self.gpus)
        return text


@dataclass(frozen=True)
class LocalScheduler:
    """The hub runs Slurm's commands itself, with SLURM_CONF pointing at the centre's config."""

    slurm_conf: str
    commands_dir: str = "/usr/bin"  # where sbatch, squeue, ... live on the hub's machine
    kind: str = "local"


@dataclass(frozen=True)
class SshScheduler:
    """The hub runs Slurm's commands on the centre's login node over ssh, as the user's login."""

    host: str
    port: int
    key_file: str
    known_hosts_file: str  # pinned host keys: the hub never trusts a key it has not been given
    query_user: str  # login for centre-wide queries (monitor, accounting, sweep)
    connect_timeout_s: int = 10
    kind: str = "ssh"


@dataclass(frozen=True)
class Network:
    """How the hub and a centre's compute nodes reach each other.

    ``direct``: the proxy opens connections to the node and the node reaches the hub's API
    itself. ``tunnel``: the compute nodes sit behind the login node; the hub forwards a local
    port to each server through its ssh connection, and the login node forwards
    ``login_node_address:hub_api_port`` (the hub's API, TLS) back to the hub. ``public_port``
    is accepted from older files and not used (jobs no longer call the public URL)."""

    mode: str = "direct"
    login_node_address: str | None = None  # the login node as the compute nodes reach it
    hub_api_port: int | None = None
    public_port: int | None = None

    @property
    def tunnel(self) -> bool:
        return self.mode == "tunnel"


@dataclass(frozen=True)
class LoginMapping:
    """How a hub user is named at a centre (their *login*): an explicit map first, then the
    identity provider's claim (an object of logins keyed by centre id, e.g. ``centre_logins``),
    then a template.

    Safety rules that need the centre's accounts (uid 0, system accounts, the query user, other
    users' logins) are applied by ``fedhub.logins``; this is only the naming."""

    template: str | None = "{username}"
    map: dict[str, str] = field(default_factory=dict)
    min_uid: int | None = None  # None: the system's UID_MIN (login.defs), for local centres
    claim: str | None = None    # the userinfo claim with the user's logins, by centre id

    def login_for(self, hub_user: str) -> tuple[str | None, bool]:
        """(login, explicit): the name looked for at the centre, and whether the map gave it."""
        if hub_user in self.map:
            return self.map[hub_user], True
        if self.template is None:
            return None, False
        return self.template.format(username=hub_user), False


@dataclass(frozen=True)
class Accounting:
    """Which Slurm charge account (sbatch --account) a user charges at a centre, and the period."""

    charge_account_template: str = "{username}"
    charge_account_map: dict[str, str] = field(default_factory=dict)
    period: str = "monthly"  # monthly, yearly, or the period's first day (YYYY-MM-DD)
    storage_command: tuple[str, ...] = ()  # argv printing "<bytes>\t<path>/<login>" lines for all users
    storage_limit_mb: int | None = None  # each user's storage limit at this centre

    def charge_account(self, hub_user: str) -> str | None:
        name = self.charge_account_map.get(hub_user) or self.charge_account_template.format(username=hub_user)
        return name if SLURM_NAME_RE.fullmatch(name) else None

    def period_start(self, now: datetime) -> datetime:
        if self.period == "monthly":
            return datetime(now.year, now.month, 1)
        if self.period == "yearly":
            return datetime(now.year, 1, 1)
        return datetime.fromisoformat(self.period)


@dataclass(frozen=True)
class Projects:
    """Where a user's projects at a centre (the Slurm accounts they may charge, one chosen per
    job) come from: the identity provider's claim (an object of project lists keyed by centre
    id), or the centre's own Slurm associations of the user's login (``sacctmgr``)."""

    claim: str | None = None
    slurm_associations: bool = False


@dataclass(frozen=True)
class Sessions:
    """What a centre lets FedHub do about a server's end (``sessions:`` in the federation file)."""

    extend_s: int = 0  # the hub may raise a server job's time limit by this much in all (0: never)
    extend_step_s: int = 1800  # one "Extend" click's worth
    idle_timeout_s: int = 0  # a server idle this long is stopped, after a snapshot (0: never culled)
    kernel_idle_timeout_s: int = 0  # a kernel at another centre idle this long is ended with its job (0: never)


@dataclass(frozen=True)
class Workspace:
    """The folder that follows a user between centres (``workspace:`` in the federation file)."""

    folder: str = "fedhub"  # inside the user's home at the centre
    show: str = "workspace"  # the lab's file browser and contents API: the workspace, or the whole home
    large_file_mb: int = 100  # larger files are listed at the other centres and fetched only when asked


WORKSPACE_FOLDER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


@dataclass(frozen=True)
class Centre:
    id: str
    name: str
    scheduler: LocalScheduler | SshScheduler
    partitions: tuple[Partition, ...]
    singleuser_cmd: str
    cluster: str = ""  # Slurm's ClusterName (sacct/sacctmgr); the id when not given
    hub_connect_url: str | None = None  # the hub's API as the centre's nodes see it; None: the hub's own
    network: Network = field(default_factory=Network)
    logins: LoginMapping = field(default_factory=LoginMapping)
    node_addresses: dict[str, str] = field(default_factory=dict)
    job_prologue: str = ""
    accounting: Accounting | None = None  # None: the centre keeps no accounts FedHub reads
    projects: Projects | None = None  # None: no choice, the accounting's charge account
    sessions: Sessions = field(default_factory=Sessions)
    workspace: Workspace = field(default_factory=Workspace)

    def partition(self, name: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == name), None)

    def idle_timeouts(self, partition: str | None) -> tuple[int, int]:
        """(server, kernel) idle timeouts in seconds for a server in ``partition`` (0: never culled):
        the partition's own, else the centre's ``sessions``. The one place this is decided."""
        part = self.partition(partition) if partition else None
        server = part.idle_timeout_s if part is not None and part.idle_timeout_s is not None else None
        kernel = part.kernel_idle_timeout_s if part is not None and part.kernel_idle_timeout_s is not None else None
        return (self.sessions.idle_timeout_s if server is None else server,
                self.sessions.kernel_idle_timeout_s if kernel is None else kernel)

    @property
    def partition_names(self) -> list[str]:
        return [p.name for p in self.partitions]

    @property
    def query_user(self) -> str | None:
        """The login the hub uses for centre-wide queries: the ssh query user, or None (the hub itself)."""
        return self.scheduler.query_user if isinstance(self.scheduler, SshScheduler) else None


@dataclass(frozen=True)
class Federation:
    centres: tuple[Centre, ...]
    default_centre: str | None = None
    source: str | None = None
    warn_percent: float = 80.0  # allocation used: users are warned from here (JupyterLab, quota())
    critical_percent: float = 95.0

    def centre(self, centre_id: str) -> Centre | None:
        return next((c for c in self.centres if c.id == centre_id), None)

    @property
    def centre_ids(self) -> list[str]:
        return [c.id for c in self.centres]


# --------------------------------------------------------------------------- loading


def load_federation(path: str | Path) -> Federation:
    """Read and validate a federation file; raise FederationError naming the bad field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FederationError("(file)", f"cannot read the federation file: {e.strerror}", str(path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FederationError("(file)", f"not valid YAML{where}", str(path))
    try:
        return parse_federation(data, source=str(path))
    except FederationError as e:
        if e.source is None:
            raise FederationError(e.path, str(e).split(": ", 1)[1], str(path)) from None
        raise


def parse_federation(data: Any, source: str | None = None) -> Federation:
    """Validate an already-parsed federation document."""
    r = FieldReader(source)
    r.mapping(data, "(top level)", allowed={"version", "default_centre", "centres", "allocation_warnings"})
    version = data.get("version", 1)
    if version != 1:
        r.fail("version", f"unsupported version {version!r}; this FedHub reads version 1")
    centres_raw = r.require(data, "centres", "(top level)")
    if not isinstance(centres_raw, list) or not centres_raw:
        r.fail("centres", "must be a non-empty list of centres")
    centres = tuple(_parse_centre(r, c, f"centres[{i}]") for i, c in enumerate(centres_raw))
    seen: set[str] = set()
    for i, c in enumerate(centres):
        if c.id in seen:
            r.fail(f"centres[{i}].id", f"duplicate centre id {c.id!r}; each id must be unique")
        seen.add(c.id)
    default = data.get("default_centre")
    if default is not None and default not in seen:
        r.fail("default_centre", f"unknown centre {default!r}; choose one of: {', '.join(sorted(seen))}")
    warn, critical = _parse_warnings(r, data.get("allocation_warnings"))
    return Federation(centres=centres, default_centre=default, source=source, warn_percent=warn,
                      critical_percent=critical)


def _parse_warnings(r: "FieldReader", raw: Any) -> tuple[float, float]:
    """``allocation_warnings: {warn_percent: 80, critical_percent: 95}``: when users are warned."""
    if raw is None:
        return 80.0, 95.0
    r.mapping(raw, "allocation_warnings", allowed={"warn_percent", "critical_percent"})
    values = []
    for key, default in (("warn_percent", 80.0), ("critical_percent", 95.0)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
            r.fail(f"allocation_warnings.{key}", f"must be a percentage above 0 and at most 100, got {value!r}")
        values.append(float(value))
    if values[0] >= values[1]:
        r.fail("allocation_warnings.warn_percent",
               f"{values[0]:g} must be below critical_percent ({values[1]:g})")
    return values[0], values[1]


class FieldReader:
    """Small helpers that turn type and range problems into errors with the field's path
    (FederationErrors here; the class file passes its own error)."""

    def __init__(self, source: str | None, error: type = FederationError):
        self.source = source
        self.error = error

    def fail(self, path: str, message: str):
        raise self.error(path, message, self.source)

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(set(map(str, value)) - allowed)
        if unknown:
            self.fail(
                f"{path}.{unknown[0]}" if path != "(top level)" else unknown[0],
                f"unknown field; allowed fields are: {', '.join(sorted(allowed))}",
            )
        return value

    def require(self, mapping: dict, key: str, path: str) -> Any:
        if key not in mapping or mapping[key] is None:
            where = key if path == "(top level)" else f"{path}.{key}"
            self.fail(where, "is required")
        return mapping[key]

    def text(self, value: Any, path: str, pattern: re.Pattern | None = None, what: str = "") -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(path, f"{value!r} is not allowed; {what}")
        return value

    def positive_int(self, value: Any, path: str, maximum: int = 10**6) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            self.fail(path, f"must be a whole number from 1 to {maximum}, got {value!r}")
        return value


# Fields renamed so that one word means one idea; an old file gets the new name, not a silent miss.
_RENAMED = {
    "accounts": "logins (a user's login at the centre)",
    "account_template": "charge_account_template (the Slurm account charged)",
    "account_map": "charge_account_map (the Slurm account charged)",
}


def _refuse_renamed(r: "FieldReader", raw: dict, path: str) -> None:
    for old, new in _RENAMED.items():
        if old in raw:
            r.fail(f"{path}.{old}", f"this field is now called {new}; rename it")


def _parse_centre(r: FieldReader, raw: Any, path: str) -> Centre:
    if isinstance(raw, dict):
        _refuse_renamed(r, raw, path)
    r.mapping(
        raw,
        path,
        allowed={
            "id", "name", "cluster", "scheduler", "hub_connect_url", "network", "partitions", "singleuser_cmd",
            "logins", "node_addresses", "job_prologue", "accounting", "projects", "sessions", "workspace",
        },
    )
    cid = r.text(
        r.require(raw, "id", path), f"{path}.id", CENTRE_ID_RE,
        "use 1-32 lower-case letters, digits and '-', starting with a letter",
    )
    name = raw.get("name", cid)
    r.text(name, f"{path}.name")
    cluster = r.text(raw.get("cluster", cid), f"{path}.cluster", SLURM_NAME_RE,
                     "give the centre's Slurm ClusterName (scontrol show config | grep ClusterName)")
    scheduler = _parse_scheduler(r, r.require(raw, "scheduler", path), f"{path}.scheduler")
    hub_url = raw.get("hub_connect_url")
    if hub_url is not None:
        r.text(hub_url, f"{path}.hub_connect_url")
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", hub_url):
            r.fail(f"{path}.hub_connect_url", f"{hub_url!r} is not an http(s) URL such as http://10.0.0.1:8081")
        hub_url = hub_url.rstrip("/")
    cmd = r.text(r.require(raw, "singleuser_cmd", path), f"{path}.singleuser_cmd")
    if not cmd.startswith("/") or any(ch.isspace() for ch in cmd):
        r.fail(f"{path}.singleuser_cmd", f"{cmd!r} must be an absolute path with no spaces (jobs do not keep PATH)")
    parts_raw = r.require(raw, "partitions", path)
    if not isinstance(parts_raw, list) or not parts_raw:
        r.fail(f"{path}.partitions", "must be a non-empty list of partitions")
    partitions = tuple(
        _parse_partition(r, p, f"{path}.partitions[{i}]") for i, p in enumerate(parts_raw)
    )
    names = [p.name for p in partitions]
    for i, n in enumerate(names):
        if names.index(n) != i:
            r.fail(f"{path}.partitions[{i}].name", f"duplicate partition {n!r} at centre {cid!r}")
    logins = _parse_logins(r, raw.get("logins", {}), f"{path}.logins")
    nodes_raw = raw.get("node_addresses", {}) or {}
    r.mapping(nodes_raw, f"{path}.node_addresses", allowed=set(map(str, nodes_raw)))
    node_addresses = {}
    for node, addr in nodes_raw.items():
        r.text(str(node), f"{path}.node_addresses", SLURM_NAME_RE, "node names are Slurm node names")
        node_addresses[str(node)] = r.text(addr, f"{path}.node_addresses.{node}", HOST_RE, "give an IP address or host name")
    prologue = raw.get("job_prologue", "") or ""
    if not isinstance(prologue, str):
        r.fail(f"{path}.job_prologue", "must be a string of shell lines run before the server")
    accounting = None
    if raw.get("accounting") is not None:
        accounting = _parse_accounting(r, raw["accounting"], f"{path}.accounting")
    network = _parse_network(r, raw.get("network"), f"{path}.network", scheduler)
    if network.tunnel and hub_url is not None:
        r.fail(f"{path}.hub_connect_url", "a tunnel centre's nodes reach the hub through the login node "
                                          "(network.login_node_address); remove hub_connect_url")
    return Centre(
        id=cid, name=name, cluster=cluster, scheduler=scheduler, hub_connect_url=hub_url, network=network,
        partitions=partitions, singleuser_cmd=cmd, logins=logins,
        node_addresses=node_addresses, job_prologue=prologue, accounting=accounting,
        projects=_parse_projects(r, raw["projects"], f"{path}.projects") if raw.get("projects") is not None else None,
        sessions=_parse_sessions(r, raw.get("sessions") or {}, f"{path}.sessions"),
        workspace=_parse_workspace(r, raw.get("workspace") or {}, f"{path}.workspace"),
    )


def _parse_workspace(r: FieldReader, raw: Any, path: str) -> Workspace:
    """``workspace: {folder: fedhub, show: workspace, large_file: 100M}``: the folder, in the
    user's home at this centre, that holds the same files at every centre they use."""
    r.mapping(raw, path, allowed={"folder", "show", "large_file"})
    folder = r.text(raw.get("folder", "fedhub"), f"{path}.folder", WORKSPACE_FOLDER_RE,
                    "give a folder inside the home such as fedhub or work/fedhub (no '..', no leading '/')")
    if ".." in folder.split("/"):
        r.fail(f"{path}.folder", f"{folder!r} leads out of the home; give a folder inside it such as fedhub")
    show = raw.get("show", "workspace")
    if show not in ("workspace", "home"):
        r.fail(f"{path}.show", f"{show!r} is not a choice; use workspace (the file browser shows the workspace) "
                               "or home (the whole home, the workspace a folder in it)")
    try:
        large = parse_memory_mb(str(raw.get("large_file", "100M")))
    except ValueError as e:
        r.fail(f"{path}.large_file", f"{e} (the size above which a file is fetched only when asked)")
    return Workspace(folder=folder.rstrip("/"), show=show, large_file_mb=large)


def _parse_sessions(r: FieldReader, raw: Any, path: str) -> Sessions:
    """``sessions: {extend: 02:00:00, extend_step: 00:30:00, idle_timeout: 01:00:00,
    kernel_idle_timeout: 00:30:00}``: the centre lets the hub, as one of its Slurm operators, raise
    a server job's time limit by up to ``extend`` in all; idle servers and kernels at other centres
    are culled after their timeouts (a partition may set its own)."""
    r.mapping(raw, path, allowed={"extend", "extend_step", "idle_timeout", "kernel_idle_timeout"})
    idle = _parse_timeout(r, raw, "idle_timeout", path) or 0
    kernel_idle = _parse_timeout(r, raw, "kernel_idle_timeout", path) or 0
    values = {}
    for key, default in (("extend", "0"), ("extend_step", "00:30:00")):
        try:
            values[key] = parse_walltime(str(raw.get(key, default))) if str(raw.get(key, default)) != "0" else 0
        except ValueError as e:
            r.fail(f"{path}.{key}", f"{e} (e.g. 01:00:00)")
    if values["extend"] and not values["extend_step"]:
        r.fail(f"{path}.extend_step", "must be a time such as 00:30:00 when extend is given")
    return Sessions(extend_s=values["extend"], extend_step_s=min(values["extend_step"] or 1800,
                                                                 values["extend"] or values["extend_step"] or 1800),
                    idle_timeout_s=idle, kernel_idle_timeout_s=kernel_idle)


MIN_IDLE_TIMEOUT_S = 10


def _parse_timeout(r: FieldReader, raw: dict, key: str, path: str) -> int | None:
    """An idle timeout: HH:MM:SS (or minutes), 0 for never; None when not given."""
    if key not in raw:
        return None
    text = str(raw[key]).strip()
    if text in ("0", "00:00:00"):
        return 0
    try:
        seconds = parse_walltime(text, minimum=MIN_IDLE_TIMEOUT_S)
    except ValueError as e:
        r.fail(f"{path}.{key}", f"{e} (e.g. 01:00:00, or 0 for never)")
    return seconds


def _template(r: FieldReader, raw: Any, path: str, example: str) -> str:
    template = r.text(raw, path)
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    if fields != {"username"}:
        r.fail(path, f"{template!r} must contain {{username}} and no other field, e.g. {example!r}")
    return template


def _parse_projects(r: FieldReader, raw: Any, path: str) -> Projects:
    r.mapping(raw, path, allowed={"claim", "slurm_associations"})
    if ("claim" in raw) == bool(raw.get("slurm_associations")):
        r.fail(path, "give one source: claim: <the userinfo claim with the projects by centre id>, or "
                     "slurm_associations: true (the login's associations at the centre)")
    if "claim" in raw:
        return Projects(claim=r.text(raw["claim"], f"{path}.claim", CLAIM_RE,
                                     "name the userinfo claim with the users' projects by centre id, e.g. projects"))
    return Projects(slurm_associations=True)


def _parse_accounting(r: FieldReader, raw: Any, path: str) -> Accounting:
    if isinstance(raw, dict):
        _refuse_renamed(r, raw, path)
    r.mapping(raw, path, allowed={"charge_account_template", "charge_account_map", "period", "storage_command",
                                  "storage_limit"})
    template = _template(r, raw.get("charge_account_template", "{username}"), f"{path}.charge_account_template",
                         "proj_{username}")
    mapping = raw.get("charge_account_map", {}) or {}
    if not isinstance(mapping, dict):
        r.fail(f"{path}.charge_account_map", "must map hub user names to Slurm charge accounts")
    for hub_user, account in mapping.items():
        r.text(account, f"{path}.charge_account_map.{hub_user}", SLURM_NAME_RE, "use a Slurm account name")
    period = str(raw.get("period", "monthly"))
    if period not in ("monthly", "yearly"):
        try:
            datetime.fromisoformat(period)
        except ValueError:
            r.fail(f"{path}.period", f"{period!r} is not monthly, yearly or a date such as 2026-01-01")
    command = raw.get("storage_command", []) or []
    if not isinstance(command, list) or not all(isinstance(w, str) and w for w in command) or \
            (command and not command[0].startswith("/")):
        r.fail(f"{path}.storage_command", "must be an argv list starting with an absolute path, "
                                          "e.g. [/usr/bin/du, -b, --max-depth=1, /scratch]")
    limit = None
    if raw.get("storage_limit") is not None:
        try:
            limit = parse_memory_mb(str(raw["storage_limit"]))
        except ValueError as e:
            r.fail(f"{path}.storage_limit", str(e).replace("memory size", "size"))
    return Accounting(charge_account_template=template, charge_account_map={str(k): v for k, v in mapping.items()},
                      period=period, storage_command=tuple(command), storage_limit_mb=limit)


def _absolute(r: FieldReader, raw: Any, path: str, what: str) -> str:
    value = r.text(raw, path)
    if not value.startswith("/"):
        r.fail(path, f"{value!r} must be an absolute path to {what}")
    return value


def _parse_scheduler(r: FieldReader, raw: Any, path: str) -> LocalScheduler | SshScheduler:
    if not isinstance(raw, dict):
        r.fail(path, "must be a mapping with 'type: local' or 'type: ssh'")
    kind = raw.get("type")
    if kind == "local":
        r.mapping(raw, path, allowed={"type", "slurm_conf", "commands_dir"})
        conf = _absolute(r, r.require(raw, "slurm_conf", path), f"{path}.slurm_conf", "the centre's slurm.conf")
        commands = _absolute(r, raw.get("commands_dir", "/usr/bin"), f"{path}.commands_dir",
                             "the directory holding sbatch, squeue and scancel")
        return LocalScheduler(slurm_conf=conf, commands_dir=commands)
    if kind == "ssh":
        r.mapping(raw, path, allowed={"type", "host", "port", "key_file", "known_hosts_file", "connect_timeout",
                                      "query_user"})
        host = r.text(r.require(raw, "host", path), f"{path}.host", HOST_RE, "give the login node's host name or address")
        port = r.positive_int(raw.get("port", 22), f"{path}.port", 65535)
        key = _absolute(r, r.require(raw, "key_file", path), f"{path}.key_file", "the hub's private key")
        if raw.get("known_hosts_file") is None:
            target = host if port == 22 else f"-p {port} {host}"
            r.fail(f"{path}.known_hosts_file",
                   "is required: the hub trusts only pinned host keys. Make the file with "
                   f"`ssh-keyscan {target} > /etc/fedhub/known_hosts`, compare the fingerprints "
                   "(`ssh-keygen -lf /etc/fedhub/known_hosts`) with the ones the centre publishes, "
                   "and name the file here")
        known = _absolute(r, raw["known_hosts_file"], f"{path}.known_hosts_file", "a known_hosts file")
        timeout = r.positive_int(raw.get("connect_timeout", 10), f"{path}.connect_timeout", 300)
        if raw.get("query_user") is None:
            r.fail(f"{path}.query_user", "is required: the login at the login node that the hub uses for "
                                         "centre-wide queries (squeue of all the hub's jobs, accounting)")
        query_user = r.text(raw["query_user"], f"{path}.query_user", LOGIN_RE,
                            "give a Unix account name at the login node")
        return SshScheduler(host=host, port=port, key_file=key, known_hosts_file=known,
                            query_user=query_user, connect_timeout_s=timeout)
    r.fail(f"{path}.type", f"{kind!r} is not a scheduler route; use 'local' or 'ssh'")


def _parse_partition(r: FieldReader, raw: Any, path: str) -> Partition:
    r.mapping(
        raw, path,
        allowed={"name", "max_cores", "max_memory", "max_walltime", "charge_rate", "gpus", "description",
                 "idle_timeout", "kernel_idle_timeout"},
    )
    name = r.text(r.require(raw, "name", path), f"{path}.name", SLURM_NAME_RE,
                  "use letters, digits, '_', '.' and '-'")
    cores = r.positive_int(r.require(raw, "max_cores", path), f"{path}.max_cores", 100_000)
    try:
        mem = parse_memory_mb(str(r.require(raw, "max_memory", path)))
    except ValueError as e:
        r.fail(f"{path}.max_memory", str(e))
    try:
        wall = parse_walltime(str(r.require(raw, "max_walltime", path)))
    except ValueError as e:
        r.fail(f"{path}.max_walltime", str(e))
    rate = raw.get("charge_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
        r.fail(f"{path}.charge_rate", f"must be a number >= 0 (core-hours charged per core-hour), got {rate!r}")
    gpus_raw = raw.get("gpus", []) or []
    if not isinstance(gpus_raw, list):
        r.fail(f"{path}.gpus", "must be a list such as [{type: a100, max: 4}]")
    gpus = []
    for i, g in enumerate(gpus_raw):
        gp = f"{path}.gpus[{i}]"
        r.mapping(g, gp, allowed={"type", "gres", "max"})
        gtype = r.text(r.require(g, "type", gp), f"{gp}.type", SLURM_NAME_RE, "use letters, digits, '_', '.' and '-'")
        gres = r.text(g.get("gres", f"gpu:{gtype}"), f"{gp}.gres", GRES_RE, "give a Slurm gres name such as 'gpu:a100' or 'dcu'")
        gpus.append(GpuKind(type=gtype, gres=gres, max=r.positive_int(r.require(g, "max", gp), f"{gp}.max", 1024)))
    description = raw.get("description", "")
    if not isinstance(description, str):
        r.fail(f"{path}.description", "must be a string")
    return Partition(
        name=name, max_cores=cores, max_memory_mb=mem, max_walltime_s=wall,
        charge_rate=float(rate), gpus=tuple(gpus), description=description,
        idle_timeout_s=_parse_timeout(r, raw, "idle_timeout", path),
        kernel_idle_timeout_s=_parse_timeout(r, raw, "kernel_idle_timeout", path),
    )


def _parse_network(r: FieldReader, raw: Any, path: str, scheduler) -> Network:
    if raw is None:
        return Network()
    r.mapping(raw, path, allowed={"mode", "login_node_address", "hub_api_port", "public_port"})
    mode = raw.get("mode", "direct")
    if mode == "direct":
        extra = sorted(set(raw) - {"mode"})
        if extra:
            r.fail(f"{path}.{extra[0]}", "is for mode: tunnel only")
        return Network()
    if mode != "tunnel":
        r.fail(f"{path}.mode", f"{mode!r} is not a network mode; use 'direct' or 'tunnel'")
    if not isinstance(scheduler, SshScheduler):
        r.fail(f"{path}.mode", "tunnel needs the centre's login node: give the centre a scheduler of type ssh")
    address = r.text(r.require(raw, "login_node_address", path), f"{path}.login_node_address", HOST_RE,
                     "give the login node's address as the compute nodes reach it, e.g. 10.20.0.1")
    api_port = r.positive_int(r.require(raw, "hub_api_port", path), f"{path}.hub_api_port", 65535)
    public_port = r.positive_int(raw["public_port"], f"{path}.public_port", 65535) if "public_port" in raw else None
    return Network(mode="tunnel", login_node_address=address, hub_api_port=api_port, public_port=public_port)


def _parse_logins(r: FieldReader, raw: Any, path: str) -> LoginMapping:
    raw = raw or {}
    r.mapping(raw, path, allowed={"template", "map", "min_uid", "claim"})
    template = raw.get("template", "{username}")
    if template is not None:
        template = _template(r, template, f"{path}.template", "hpc_{username}")
    mapping = raw.get("map", {}) or {}
    if not isinstance(mapping, dict):
        r.fail(f"{path}.map", "must map hub user names to logins at the centre")
    for hub_user, login in mapping.items():
        r.text(login, f"{path}.map.{hub_user}", LOGIN_RE, "logins use lower-case letters, digits, '_', '.' and '-'")
        if login == "root":
            r.fail(f"{path}.map.{hub_user}", "no hub user may act as root at a centre; map to a personal login")
    logins = list(mapping.values())
    for hub_user, login in mapping.items():
        if logins.count(login) > 1:
            r.fail(f"{path}.map.{hub_user}", f"login {login!r} is mapped to more than one hub user; each login "
                                             "belongs to one person")
    min_uid = raw.get("min_uid")
    if min_uid is not None:
        min_uid = r.positive_int(min_uid, f"{path}.min_uid", 2**31)
    claim = raw.get("claim")
    if claim is not None:
        claim = r.text(claim, f"{path}.claim", CLAIM_RE, "name the userinfo claim with the users' logins by "
                                                         "centre id, e.g. centre_logins")
    return LoginMapping(template=template, map={str(k): v for k, v in mapping.items()}, min_uid=min_uid,
                        claim=claim)


def federation_at(path: str) -> Federation:
    """The validated federation for ``path``, loaded once per process (the hub's spawners and
    API handlers share it)."""
    loaded = runtime.current().federations
    key = os.path.abspath(path)
    if key not in loaded:
        loaded[key] = load_federation(key)
    return loaded[key]
