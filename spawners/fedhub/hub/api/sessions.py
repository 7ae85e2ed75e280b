"""A user's servers as sessions with an end: where each runs and how long its job has left.

    GET /hub/api/fedhub/users/<name>/servers
    GET /hub/api/fedhub/users/<name>/snapshots   (the sessions saved before an end, to restore)

A notebook server at a centre is a Slurm job with a walltime, and the job's end is the session's
end unless the user moves on. The answer lists each of the user's running or starting FedHub
servers (the default one is named ""), from what the hub's watcher last read of Slurm, so an
operator's ``scontrol update TimeLimit`` shows at once:

    {"servers": [{"name": "", "centre": "alpha", "centre_name": "Alpha", "job_id": "100012",
                  "state": "RUNNING", "started": "2026-12-04T10:00:00+00:00",
                  "ends": "2026-12-04T12:00:00+00:00", "seconds_left": 5400,
                  "extendable_s": 3600, "extend_step_s": 1800,
                  "allocation": {"charge_account": "proj_alice", "project": null, "level": "ok",
                                 "core_hours_remaining": 41.5, "percent": 17.0}}]}

(``extendable_s``: how much more the hub may add to the job, where its centre allows extending;
``allocation``: what is left of the allocation the server is charged to, from the quota
service's last reading, null where the centre keeps no accounts.) With named servers a user has
several, each at its own centre.

Needs ``read:servers`` for the server (the user and admins for all of them; a server's own token
only for itself). Times are the centre's clock read as UTC offsets of the hub's zone.
"""

from __future__ import annotations

import json
from datetime import datetime

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from ...quota.client import entry_for, fetch_report
from ...spawning.extension import extendable_s
from ...spawning.snapshots import SnapshotStore
from ...i18n import InRequestLanguage
from .auth import api_authenticated


def _aware(moment: datetime | None) -> datetime | None:
    """Slurm prints local times without a zone: the hub and its centres share the local zone."""
    return moment.astimezone() if moment is not None else None


class ServersHandler(InRequestLanguage, APIHandler):
    @api_authenticated
    async def get(self, user_name: str):
        user = self.find_user(user_name)
        readable = [name for name in (user.spawners if user is not None else {})
                    if has_scope(f"read:servers!server={user_name}/{name}", self.parsed_scopes, db=self.db)]
        if user is None or not (readable or has_scope(f"read:servers!user={user_name}", self.parsed_scopes,
                                                      db=self.db)):
            raise web.HTTPError(404, "No access to resources or resources not found")
        now = datetime.now().astimezone()
        servers = []
        running = [user.spawners[name] for name in readable if _running(user.spawners[name])]
        report = await self.allocations(running) if running else None
        for spawner in running:
            name, job = spawner.name or "", spawner.job
            seen = await job.observe(fresh=False)
            info = seen.info if seen.answered else None
            started, ends = _aware(info.start_time if info else None), _aware(info.end_time if info else None)
            servers.append({
                "name": name, "centre": job.centre.id, "centre_name": job.centre.name, "job_id": job.job_id,
                "state": info.state if info else "UNKNOWN",
                "started": started.isoformat() if started and info.is_running else None,
                "ends": ends.isoformat() if ends and info.is_running else None,
                "seconds_left": max(0, int((ends - now).total_seconds())) if ends and info.is_running else None,
                "extendable_s": extendable_s(spawner, info), "extend_step_s": job.centre.sessions.extend_step_s,
                "allocation": _allocation(entry_for(report, job.centre.id, spawner.request.project
                                                    if spawner.request else None)),
            })
        self.finish(json.dumps({"servers": servers}))

    async def allocations(self, running: list) -> dict | None:
        """The user's allocations, read once for all their running servers (the quota service's
        cached figures, with one of those servers' own token), or None."""
        spawner = next((s for s in running if s.api_token and s.quota_service_url), None)
        if spawner is None:
            return None
        return await fetch_report(spawner.quota_service_url, spawner.api_token, spawner.user.name, fresh=False)


def _running(spawner) -> bool:
    job = getattr(spawner, "job", None)
    return job is not None and bool(job.job_id) and (spawner.active or spawner.ready)


def _allocation(entry: dict | None) -> dict | None:
    if not entry or not entry.get("core_hours"):
        return None
    core = entry["core_hours"]
    return {"charge_account": entry.get("charge_account"), "project": entry.get("project"), "level": entry.get("level"),
            "core_hours_remaining": core.get("remaining"), "percent": core.get("percent")}


class SnapshotsHandler(InRequestLanguage, APIHandler):
    """GET /hub/api/fedhub/users/<name>/snapshots: the sessions the user's servers saved before
    their end, newest first (``spawning/snapshots.py``); read:servers for the user."""

    @api_authenticated
    def get(self, user_name: str):
        user = self.find_user(user_name)
        if user is None or not has_scope(f"read:servers!user={user_name}", self.parsed_scopes, db=self.db):
            raise web.HTTPError(404, "No access to resources or resources not found")
        state_dir = getattr(user.spawner, "state_dir", "")
        self.finish(json.dumps({"snapshots": SnapshotStore(state_dir).list(user_name) if state_dir else []}))


ROUTES = [(r"/api/fedhub/users/([^/]+)/servers", ServersHandler),
          (r"/api/fedhub/users/([^/]+)/snapshots", SnapshotsHandler)]
