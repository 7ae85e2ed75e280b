"""The culler's word with the hub before it stops an idle server (``culling/``):

    POST /hub/api/fedhub/users/<user>/server/cull            the default server
    POST /hub/api/fedhub/users/<user>/servers/<name>/cull    a named one
         {"inactive_s": N} -> 200 {"snapshot": {...} | null, "core_hours_returned", "message"}

The hub has the server save its session (the snapshot the next start offers, reason "idle")
and records the core-hours the stop gives back (``culling/returned.py``). 409 when the server
is continuing at another centre or not running: the culler leaves it. Only a token with
``custom:fedhub:cull`` (the culler service's role) may call it; anyone else gets 404.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from ...culling.returned import CulledLedger, returned_core_hours
from ...spawning.snapshots import summary
from .auth import api_authenticated

CULL_SCOPE = "custom:fedhub:cull"


class CullHandler(APIHandler):
    @api_authenticated
    async def post(self, user_name: str, server_name: str | None = None):
        name = server_name or ""
        user = self.find_user(user_name)
        if user is None or not has_scope(f"{CULL_SCOPE}!server={user_name}/{name}", self.parsed_scopes, db=self.db):
            raise web.HTTPError(404, "No access to resources or resources not found")
        spawner = user.spawners.get(name) if name else user.spawner
        if spawner is None or not hasattr(spawner, "ending") or not spawner.ready or spawner.pending \
                or spawner.job is None or not spawner.job.job_id:
            raise web.HTTPError(409, f"{user_name}'s server {name!r} is not running")
        if spawner.continuing is not None:
            raise web.HTTPError(409, f"{user_name}'s server {name!r} is continuing at another centre")
        try:
            inactive = int(json.loads(self.request.body or b"{}").get("inactive_s", 0))
        except (ValueError, TypeError, AttributeError):
            inactive = 0
        job, request = spawner.job, spawner.request
        seen = await job.observe(fresh=False)
        info = seen.info if seen.answered else None
        left = (info.end_time.astimezone() - datetime.now().astimezone()).total_seconds() \
            if info is not None and info.end_time is not None else 0
        partition = job.centre.partition(request.partition) if request is not None else None
        returned = returned_core_hours(left, request.cores if request else 0, partition.charge_rate if partition else 1.0)
        spawner.ending.saved_for = job.job_id  # no walltime snapshot racing this one
        record = await spawner.ending.snapshot("idle")
        CulledLedger(spawner.state_dir).add(user_name, {
            "at": datetime.now(timezone.utc).isoformat(), "centre": job.centre.id, "server": name,
            "job_id": job.job_id, "core_hours": returned, "inactive_s": inactive})
        saved = f"saved {summary(record)}" if record else "no snapshot (the server did not save; see above)"
        message = (f"idle {inactive} s past {job.centre.name}'s timeout: {saved}; "
                   f"{returned:g} core-hours of walltime left returned")
        spawner.log.info("%s culling job %s: %s", spawner._where, job.job_id, message)
        self.finish(json.dumps({"snapshot": record, "core_hours_returned": returned, "message": message}))


ROUTES = [(r"/api/fedhub/users/([^/]+)/server/cull", CullHandler),
          (r"/api/fedhub/users/([^/]+)/servers/([^/]+)/cull", CullHandler)]
