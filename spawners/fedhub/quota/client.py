"""How the hub reads allocations: it asks the quota service, which owns the only cache.

One reading of a centre's accounting per refresh serves the whole hub: the service's cache
answers the lab, ``quota()``, spawn checks and placement alike. The hub asks with the starting
server's own token (its owner may read their own figures) and ``fresh=1`` (figures no older
than the service's max-age). A service that does not answer does not stop a spawn: Slurm still
enforces the limits, and the hub says so in its log.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient

log = logging.getLogger("JupyterHub.fedhub.quota")  # the hub's handlers and level


async def fetch_report(service_url: str, token: str, hub_user: str, timeout: float = 10.0,
                       fresh: bool = True) -> dict | None:
    """The service's report for ``hub_user`` ({centre id: [entry per project, the default
    first]}), or None if it did not answer."""
    url = f"{service_url.rstrip('/')}/api/quota/{quote(hub_user, safe='')}" + ("?fresh=1" if fresh else "")
    try:
        response = await AsyncHTTPClient().fetch(url, headers={"Authorization": f"token {token}"},
                                                 request_timeout=timeout)
        report = json.loads(response.body)
    except Exception as e:
        log.warning("[%s] the quota service at %s did not answer (%s); spawning without an allocation "
                    "check (Slurm still enforces the limits)", hub_user, service_url, e)
        return None
    by_centre: dict[str, list[dict]] = {}
    for entry in report.get("centres", []):
        by_centre.setdefault(entry["centre"], []).append(entry)
    return by_centre


def entry_for(report: dict | None, centre: str, project: str | None = None) -> dict | None:
    """The report's entry for ``project`` at ``centre`` (None: the default project's)."""
    entries = (report or {}).get(centre) or []
    if project is not None:
        return next((e for e in entries if e.get("project") == project), None)
    return entries[0] if entries else None


def used_up(entry: dict) -> bool:
    return entry.get("level") == "used-up"


def fraction_left(entry: dict) -> float | None:
    """Core-hours left as a fraction of the limit (None: no limit, or no figures)."""
    core = entry.get("core_hours") or {}
    if used_up(entry):
        return 0.0
    if not core.get("limit"):
        return None
    return max(0.0, 1 - core["used"] / core["limit"])
