"""The spawn page's options form, and turning its fields back into user options.

The form is rendered with autoescaped Jinja from the federation model (each centre's
partitions and limits); submitted fields go through ``options.parse_user_options``, the same
validation the REST API uses, so both paths accept and reject exactly the same things.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ..federation import Federation
from ..i18n import _, current_language, format_number
from ..i18n.jinja import FedHubI18n
from ..logins import NoLogin, login_at
from ..projects import projects_at
from ..units import format_memory_mb, format_walltime
from ..request import ALLOWED_OPTIONS, AUTO, SpawnRequest, default_resources, parse_user_options, widest_partition

_env = Environment(
    loader=PackageLoader("fedhub.spawning", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    extensions=[FedHubI18n],
)


def render_options_form(federation: Federation, hub_user: str, previous: dict | None = None, *,
                        health: dict[str, bool] | None = None, allow_auto: bool = False,
                        facts: dict[str, dict] | None = None, estimate_url: str = "",
                        classes: list[dict] | None = None, snapshots: list[dict] | None = None) -> str:
    """HTML for the spawn page; pre-selects the user's previous choice when it is still valid.

    ``facts`` (centre id -> what the hub already knows: ``idle_cores`` by partition and
    ``allocation`` by project, see ``centre_facts``) are shown beside the chosen centre;
    ``classes`` in session (``name``, ``title``, ``until``, ``summary``) each get a "Start for" button;
    ``snapshots`` (``id``, ``summary``), sessions saved before an end, may be restored by the start."""
    facts = facts or {}
    health = health or {}
    no_login: dict[str, str | None] = {}  # each centre's login checked once per render
    for c in federation.centres:
        try:
            login_at(c, hub_user)
            no_login[c.id] = None if projects_at(c, hub_user) != [] else _("you have no project to charge there")
        except NoLogin as e:
            no_login[c.id] = e.reason
    usable = [c for c in federation.centres if no_login[c.id] is None]
    mine = [p for c in usable for p in c.partitions]
    selected = _initial_choice(federation, hub_user, previous, allow_auto, usable)
    centres = []
    centres_json: dict[str, Any] = {}
    for c in federation.centres:
        up = health.get(c.id, True)
        centres.append({"id": c.id, "name": c.name, "no_login": no_login[c.id], "up": up,
                        "partitions": c.partitions})
        centres_json[c.id] = {
            "name": c.name,
            "no_login": no_login[c.id],
            "up": up,
            "partitions": {p.name: _partition_json(p) for p in c.partitions},
            "projects": projects_at(c, hub_user) if no_login[c.id] is None else None,
            "idle_cores": facts.get(c.id, {}).get("idle_cores"),
            "pending": facts.get(c.id, {}).get("pending"),
            "allocation": facts.get(c.id, {}).get("allocation", {}),
        }
    if allow_auto and mine:
        widest = widest_partition(mine)
        centres_json[AUTO] = {"name": _("Any centre"), "no_login": None, "up": True,
                              "partitions": {"": {**_partition_json(widest),
                                                  "limits": _("the largest any of your centres allows: {limits}")
                                                  .format(limits=widest.limits_text())}}}
    return _env.get_template("options_form.html").render(
        centres=centres, centres_json=centres_json, selected=selected, allow_auto=allow_auto and bool(mine),
        estimate_url=estimate_url, classes=classes or [], option_names=list(ALLOWED_OPTIONS),
        snapshots=snapshots or [], fedhub_language=current_language(),
    )


def _partition_json(p) -> dict[str, Any]:
    return {
        "max_cores": p.max_cores,
        "max_memory": format_memory_mb(p.max_memory_mb),
        "max_walltime": format_walltime(p.max_walltime_s),
        "limits": p.limits_text(),
        "gpus": [{"type": g.type, "max": g.max} for g in p.gpus],
    }


def _initial_choice(federation: Federation, hub_user: str, previous: dict | None, allow_auto: bool,
                    mine: list) -> dict[str, Any]:
    """The previous choice if still valid; else "any centre", the default centre, or the first
    of ``mine`` (the centres where the user has a usable login)."""
    if previous:
        try:
            return parse_user_options(federation, previous, hub_user, allow_auto).to_user_options()
        except ValueError:
            pass
    if allow_auto and not federation.default_centre and mine:
        centre, partition = AUTO, widest_partition([p for c in mine for p in c.partitions])
    else:
        chosen = next((c for c in federation.centres if c.id == federation.default_centre), None) or \
            (mine or list(federation.centres))[0]
        centre, partition = chosen.id, chosen.partitions[0]
    d = default_resources(partition)
    return {"centre": centre, "partition": "" if centre == AUTO else partition.name, "cores": d["cores"],
            "memory": format_memory_mb(d["memory_mb"]), "walltime": format_walltime(d["walltime_s"])}



def form_to_options(form_data: dict[str, list]) -> dict[str, Any]:
    """Form fields (lists of strings) -> single values; empty and unknown fields pass through
    so validation can name them."""
    options: dict[str, Any] = {}
    for key, values in form_data.items():
        if key.startswith("_"):  # the page's own fields, e.g. JupyterHub's _xsrf
            continue
        value = values[0] if isinstance(values, list) and values else values
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None) and key in ALLOWED_OPTIONS:
            continue
        options[key] = value
    if str(options.get("gpus", "0")) == "0":
        options.pop("gpus", None)
        options.pop("gpu_type", None)
    return options


def options_from_form(federation: Federation, form_data: dict[str, list], hub_user: str,
                      allow_auto: bool = False) -> SpawnRequest:
    return parse_user_options(federation, form_to_options(form_data), hub_user, allow_auto)


def allocation_text(entry: dict) -> str:
    """An allocation as the form shows it beside a centre: what is left, in words."""
    if entry.get("level") == "used-up":
        return _("allocation used up")
    core = entry.get("core_hours") or {}
    if core.get("limit"):
        return _("{left} of {limit} core-h left").format(left=format_number(max(0.0, core["limit"] - core["used"])),
                                                         limit=format_number(core["limit"], None))
    if "used" in core:
        return _("{used} core-h used, no limit").format(used=format_number(core["used"]))
    return ""


def centre_facts(report: dict | None, idle: dict[str, dict[str, int]],
                 pending: dict[str, int | None] | None = None) -> dict[str, dict]:
    """What the form shows beside each centre, from what the hub has already read: idle cores by
    partition and pending jobs (the monitor's node figures) and the allocation left by project
    (the quota service's cache)."""
    facts: dict[str, dict] = {cid: {"idle_cores": cores, "pending": (pending or {}).get(cid)}
                              for cid, cores in idle.items()}
    for cid, entries in (report or {}).items():
        facts.setdefault(cid, {})["allocation"] = {e.get("project") or "": allocation_text(e) for e in entries}
    return facts
