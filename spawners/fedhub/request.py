"""User options: the one validation that the spawn form and the REST API both go through.

A request is checked field by field against an allow-list and the chosen centre's limits and
turned into a typed ``SpawnRequest`` before anything runs. Errors name the field and the fix.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from .federation import CENTRE_ID_RE, SLURM_NAME_RE, Centre, Federation, GpuKind, Partition
from .logins import NoLogin, login_at, usable_login
from . import claims
from .i18n import _, ngettext
from .projects import projects_at
from .units import format_memory_mb, format_walltime, parse_memory_mb, parse_walltime

AUTO = "auto"  # the centre value that asks FedHub to choose


@dataclass(frozen=True)
class OptionField:
    """One user option, as every form shows it: its name (the key in user_options and in the
    kernel and move APIs), what kind of value it takes, an example, and the partition's limit
    that bounds it. The hub's form, its APIs, the notebook server and the lab's React form all
    read this list (the lab through ``GET .../kernel-centres``, as ``fields``)."""

    name: str
    kind: str  # "choice": one of a list the hub gives; "count": a whole number; "memory"; "walltime"
    example: str
    minimum: int | None = None  # for counts
    limit: str | None = None  # the partition's field that bounds it (kernel-centres' "partitions")


OPTION_FIELDS = (
    OptionField("centre", "choice", "alpha"),
    OptionField("partition", "choice", "batch"),
    OptionField("project", "choice", "chem-101"),
    OptionField("cores", "count", "4", minimum=1, limit="max_cores"),
    OptionField("memory", "memory", "4G", limit="max_memory_mb"),
    OptionField("gpus", "count", "1", minimum=0),
    OptionField("gpu_type", "choice", "a100"),
    OptionField("walltime", "walltime", "01:30:00", limit="max_walltime_s"),
)
ALLOWED_OPTIONS = tuple(f.name for f in OPTION_FIELDS)


def option_schema() -> list[dict[str, Any]]:
    """The option fields as JSON, for forms that are not the hub's own (the lab's)."""
    return [asdict(f) for f in OPTION_FIELDS]

DEFAULT_CORES = 1
DEFAULT_MEMORY_MB = 1024
DEFAULT_WALLTIME_S = 3600
_MAX_TEXT = 64


class OptionError(ValueError):
    """A user option that cannot be accepted; ``field`` is the option's name."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class SpawnRequest:
    """A validated request: every value typed, in range, and from an allow-list."""

    centre: str
    partition: str
    login: str  # the user's login at the centre ("" while the centre is "auto")
    cores: int
    memory_mb: int
    walltime_s: int
    gpu_type: str | None = None
    gpus: int = 0
    project: str | None = None  # the charge account chosen among the user's projects there
    klass: str | None = None  # a class's start ("Start for <class>"): its settings, its centres
    reservation: str | None = None  # the class's Slurm reservation at the centre
    # a class start before placement: where it may run, as (centre, partition, project, reservation)
    places: tuple[tuple[str, str, str | None, str | None], ...] = ()

    def at(self, centre: str, partition: str, login: str) -> "SpawnRequest":
        """This request placed at ``centre``; a class's place brings its project and reservation."""
        place = next((p for p in self.places if p[0] == centre), None)
        extra = {"project": place[2] or self.project, "reservation": place[3]} if place else {}
        return replace(self, centre=centre, partition=partition, login=login, places=(), **extra)

    def to_user_options(self) -> dict[str, Any]:
        """The canonical JSON form stored as ``user_options`` (re-validates to itself)."""
        if self.klass:  # a class start is its class's settings, not the student's choice
            return {"class": self.klass, "cores": self.cores, "memory": format_memory_mb(self.memory_mb),
                    "walltime": format_walltime(self.walltime_s)}
        opts: dict[str, Any] = {"centre": self.centre}
        if self.partition:
            opts["partition"] = self.partition
        if self.project:
            opts["project"] = self.project
        opts.update({
            "cores": self.cores,
            "memory": format_memory_mb(self.memory_mb),
            "walltime": format_walltime(self.walltime_s),
        })
        if self.gpus:
            opts["gpus"] = self.gpus
            opts["gpu_type"] = self.gpu_type
        return opts

    def describe(self) -> str:
        text = ngettext("partition {partition}, {n} core, {memory} memory, {walltime} walltime",
                        "partition {partition}, {n} cores, {memory} memory, {walltime} walltime", self.cores).format(
            partition=self.partition, n=self.cores, memory=format_memory_mb(self.memory_mb),
            walltime=format_walltime(self.walltime_s))
        if self.gpus:
            text += f", {self.gpus} x {self.gpu_type}"
        if self.project:
            text += _(", charged to {project}").format(project=self.project)
        if self.reservation:
            text += _(", in reservation {reservation}").format(reservation=self.reservation)
        if self.klass:
            text += _(", for class {name}").format(name=self.klass)
        return text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SpawnRequest":
        """From ``as_dict()``; state stored before logins were named ``login`` says ``account``."""
        data = dict(data)
        if "account" in data:
            data.setdefault("login", data.pop("account"))
        data["places"] = tuple(tuple(p) for p in data.get("places", ()))
        return cls(**data)


def default_resources(partition: Partition) -> dict[str, int]:
    """What a request gets for what it leaves out (the form shows the same): the one place."""
    return {"cores": DEFAULT_CORES, "memory_mb": min(DEFAULT_MEMORY_MB, partition.max_memory_mb),
            "walltime_s": min(DEFAULT_WALLTIME_S, partition.max_walltime_s)}


def parse_user_options(federation: Federation, options: Any, hub_user: str, allow_auto: bool = False) -> SpawnRequest:
    """Validate ``options`` (from the form or the API) for ``hub_user``; raise OptionError.

    With ``allow_auto``, ``"centre": "auto"`` (also the default when the federation names no
    default centre) is checked against the widest limits among the user's centres and left
    for placement to resolve (``centre == "auto"``, ``login == ""``)."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OptionError("user_options", _('must be a JSON object such as {example}').format(
            example='{"centre": "a", "cores": 2}'))
    unknown = sorted(str(k) for k in options if k not in ALLOWED_OPTIONS)
    if unknown:
        raise OptionError(
            _short(unknown[0]), _("unknown option; allowed options are: {options}").format(options=", ".join(ALLOWED_OPTIONS))
        )
    centre_value = options.get("centre")
    if allow_auto and (centre_value == AUTO or (centre_value in (None, "") and not federation.default_centre)):
        return _parse_auto(federation, options, hub_user)
    if centre_value == AUTO:
        raise OptionError("centre", _("automatic placement is not enabled here; choose one of: {centres}").format(
            centres=", ".join(federation.centre_ids)))
    centre = _choose_centre(federation, centre_value)
    try:
        login = login_at(centre, hub_user)
    except NoLogin as e:
        raise OptionError("centre", _("{problem}. Choose another centre, or ask {centre} for a login").format(
            problem=e, centre=centre.name)) from None
    project = _project(centre, hub_user, options.get("project"))
    partition = _choose_partition(centre, options.get("partition"))
    where = _("partition {partition!r} at {centre}").format(partition=partition.name, centre=centre.name)

    cores = _whole_number("cores", options.get("cores", DEFAULT_CORES), 1, partition.max_cores, where)
    memory_mb = _memory(options.get("memory"), partition, where)
    walltime_s = _walltime(options.get("walltime"), partition, where)
    gpu_type, gpus = _gpus(options.get("gpu_type"), options.get("gpus", 0), partition, where)
    return SpawnRequest(
        centre=centre.id, partition=partition.name, login=login, cores=cores,
        memory_mb=memory_mb, walltime_s=walltime_s, gpu_type=gpu_type, gpus=gpus, project=project,
    )


def _project(centre: Centre, hub_user: str, value: Any) -> str | None:
    """The project to charge: one of the user's projects at the centre (the first if none is
    named); None where the centre offers no choice (its charge account is used)."""
    projects = projects_at(centre, hub_user)
    if projects is None:
        if value not in (None, ""):
            raise OptionError("project", _("{centre} offers no choice of project; leave project out").format(
                centre=centre.name))
        return None
    if not projects:
        if centre.projects.claim and not claims.known(hub_user):
            raise OptionError("project", _(
                "only the federation's login gives projects at {centre}, and {user} has never logged in to this hub: "
                "they log in once, then the server can be started (or choose a centre that needs no login first)"
            ).format(centre=centre.name, user=hub_user))
        raise OptionError("project", _("you have no project to charge at {centre}; ask your project's manager to add "
                                       "you to one, or choose another centre").format(centre=centre.name))
    if value in (None, ""):
        return projects[0]
    text = _text("project", value)
    if text not in projects:
        raise OptionError("project", _("{value!r} is not one of your projects at {centre}; choose one of: "
                                       "{projects}").format(value=_short(text), centre=centre.name,
                                                            projects=", ".join(projects)))
    return text


def _parse_auto(federation: Federation, options: dict, hub_user: str) -> SpawnRequest:
    if options.get("project") not in (None, ""):
        raise OptionError("project", _("a project belongs to one centre: choose the centre, then the project"))
    centres = [c for c in federation.centres if usable_login(c, hub_user) is not None]
    if not centres:
        raise OptionError("centre", _("you have no usable login at any centre of this federation"))
    partitions = [p for c in centres for p in c.partitions]
    name = options.get("partition")
    if name not in (None, ""):
        text = _text("partition", name)
        partitions = [p for p in partitions if p.name == text]
        if not partitions:
            known = sorted({p.name for c in centres for p in c.partitions})
            raise OptionError("partition", _("no centre of yours has a partition {value!r}; choose one of: {known} or "
                                                 "leave it empty").format(value=_short(text), known=", ".join(known)))
    widest = widest_partition(partitions)
    where = _("any centre where you have a login")
    cores = _whole_number("cores", options.get("cores", DEFAULT_CORES), 1, widest.max_cores, where)
    memory_mb = _memory(options.get("memory"), widest, where)
    walltime_s = _walltime(options.get("walltime"), widest, where)
    gpu_type, gpus = _gpus(options.get("gpu_type"), options.get("gpus", 0), widest, where)
    return SpawnRequest(centre=AUTO, partition=partitions[0].name if name not in (None, "") else "",
                        login="", cores=cores, memory_mb=memory_mb, walltime_s=walltime_s,
                        gpu_type=gpu_type, gpus=gpus)


def widest_partition(partitions: list[Partition]) -> Partition:
    """A partition with the largest of each limit: what some centre might run."""
    gpus: dict[str, GpuKind] = {}
    for p in partitions:
        for g in p.gpus:
            if g.type not in gpus or g.max > gpus[g.type].max:
                gpus[g.type] = g
    return Partition(
        name="(any)", max_cores=max(p.max_cores for p in partitions),
        max_memory_mb=max(p.max_memory_mb for p in partitions),
        max_walltime_s=max(p.max_walltime_s for p in partitions), gpus=tuple(gpus.values()),
    )


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(field: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise OptionError(field, _("must be a string, got {kind}").format(kind=type(value).__name__))
    text = str(value)
    if len(text) > _MAX_TEXT:
        raise OptionError(field, _("is too long ({n} characters)").format(n=len(text)))
    return text


def _choose_centre(federation: Federation, value: Any) -> Centre:
    choices = ", ".join(federation.centre_ids)
    if value in (None, ""):
        if federation.default_centre:
            value = federation.default_centre
        elif len(federation.centres) == 1:
            value = federation.centres[0].id
        else:
            raise OptionError("centre", _("choose a centre: one of {centres}").format(centres=choices))
    text = _text("centre", value)
    centre = federation.centre(text) if CENTRE_ID_RE.fullmatch(text) else None
    if centre is None:
        raise OptionError("centre", _("unknown centre {value!r}; choose one of: {centres}").format(
            value=_short(text), centres=choices))
    return centre


def _choose_partition(centre: Centre, value: Any) -> Partition:
    if value in (None, ""):
        return centre.partitions[0]
    text = _text("partition", value)
    partition = centre.partition(text) if SLURM_NAME_RE.fullmatch(text) else None
    if partition is None:
        raise OptionError(
            "partition",
            _("{centre} has no partition {value!r}; choose one of: {partitions}").format(
                centre=centre.name, value=_short(text), partitions=", ".join(centre.partition_names)),
        )
    return partition


def _whole_number(field: str, value: Any, low: int, high: int, where: str) -> int:
    if isinstance(value, bool):
        raise OptionError(field, _("must be a whole number"))
    if isinstance(value, int):
        number = value
    else:
        text = _text(field, value).strip()
        if not re.fullmatch(r"\d{1,7}", text):
            raise OptionError(field, _("{value!r} is not a whole number; choose {low}-{high}").format(
                value=_short(text), low=low, high=high))
        number = int(text)
    if not low <= number <= high:
        raise OptionError(field, _("{value} is outside what {where} allows; choose {low}-{high}").format(
            value=_short(number), where=where, low=low, high=high))
    return number


def _memory(value: Any, partition: Partition, where: str) -> int:
    limit = partition.max_memory_mb
    if value in (None, ""):
        return default_resources(partition)["memory_mb"]
    text = _text("memory", value)
    try:
        mb = parse_memory_mb(text)
    except ValueError as e:
        raise OptionError("memory", str(e)) from None
    if mb > limit:
        raise OptionError(
            "memory", _("{value} is more than {where} allows; ask for at most {limit}").format(
                value=_short(text), where=where, limit=format_memory_mb(limit))
        )
    return mb


def _walltime(value: Any, partition: Partition, where: str) -> int:
    limit = partition.max_walltime_s
    if value in (None, ""):
        return default_resources(partition)["walltime_s"]
    text = _text("walltime", value)
    try:
        seconds = parse_walltime(text)
    except ValueError as e:
        raise OptionError("walltime", str(e)) from None
    if seconds > limit:
        raise OptionError(
            "walltime", _("{value} is longer than {where} allows; ask for at most {limit}").format(
                value=_short(text), where=where, limit=format_walltime(limit))
        )
    return seconds


def _gpus(type_value: Any, count_value: Any, partition: Partition, where: str) -> tuple[str | None, int]:
    if count_value in (None, ""):
        count_value = 0
    if not partition.gpus:
        count = _whole_number("gpus", count_value, 0, 1_000_000, where)
        if count:
            raise OptionError("gpus", _("{where} has no GPUs; ask for 0 or choose a partition with GPUs").format(where=where))
        if type_value not in (None, ""):
            raise OptionError("gpu_type", _("{where} has no GPUs; leave gpu_type empty").format(where=where))
        return None, 0
    kinds = ", ".join(g.type for g in partition.gpus)
    if type_value in (None, ""):
        kind = partition.gpu(None)
    else:
        text = _text("gpu_type", type_value)
        kind = partition.gpu(text) if SLURM_NAME_RE.fullmatch(text) else None
        if kind is None:
            raise OptionError("gpu_type", _("{where} has no GPU type {value!r}; choose one of: {kinds}").format(
                where=where, value=_short(text), kinds=kinds))
    count = _whole_number("gpus", count_value, 0, kind.max, _("{where} for {gpu}").format(where=where, gpu=kind.type))
    return (kind.type, count) if count else (None, 0)
