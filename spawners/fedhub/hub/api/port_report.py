"""The hub endpoint where a starting notebook server reports the port it listens on.

batchspawner-singleuser (run inside the job) picks a free port on the compute node and POSTs
``{"port": N}`` to ``/hub/api/batchspawner``. batchspawner's own handler sets *any* attribute
named in that body on *any* of the user's spawners; this replacement accepts only a port,
only from the token of the server being started, and only while it is starting (or while its
successor starts at another centre: ``spawning/continuation.py``).
``hub.api.install_routes`` puts it in place of batchspawner's.
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers import APIHandler
from tornado import web

ROUTE = r"/api/batchspawner"


class PortReportHandler(APIHandler):
    @web.authenticated
    def post(self):
        token = self.get_auth_token()
        user = self.current_user
        spawner = next(
            (s for s in getattr(user, "spawners", {}).values() if token and s.api_token == token),
            None,
        )
        if spawner is None:
            raise web.HTTPError(403, "Only a server's own token may report its port")
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "Body must be JSON: {\"port\": <1-65535>}")
        if not isinstance(body, dict) or set(body) != {"port"}:
            raise web.HTTPError(400, "Body must be exactly {\"port\": <1-65535>}")
        port = body["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise web.HTTPError(400, f"port must be a whole number from 1 to 65535, got {port!r}")
        if not getattr(spawner, "expects_port", spawner.pending == "spawn"):
            raise web.HTTPError(409, f"{spawner._log_name} is not starting; a port can only be reported during start")
        report = getattr(spawner, "report_port", None)
        if report is not None:
            report(port)
        else:
            spawner.port = port
        self.log.info("Server %s reported port %s", spawner._log_name, port)
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


ROUTES = [(ROUTE, PortReportHandler)]
