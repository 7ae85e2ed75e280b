"""``GET {base_url}fedhub/api/time-left``: how long this server's job has left, for the lab.

The server is a Slurm job with a walltime; the hub reads the job's end from Slurm (and sees an
operator's change to it), so the lab asks the hub with the server's own token, which may read this
server's record and nothing else. Answers 200 with ``{"centre", "centre_name", "job_id", "ends",
"seconds_left", "extendable_s", "extend_step_s"}``, 404 when this server was not started by FedHub, 503 when the hub does not answer.
"""

from __future__ import annotations

import json

from jupyter_server.utils import url_path_join
from tornado import web

from ..provisioner.hub_client import HubKernelError
from .kernels import _HubHandler


class TimeLeftHandler(_HubHandler):
    @web.authenticated
    async def get(self):
        hub = self.hub()
        try:
            answer = await hub.call("GET", "servers")
        except HubKernelError as e:
            raise web.HTTPError(503, f"the hub did not say how long this server has left: {e}") from None
        mine = next((s for s in answer.get("servers", []) if s.get("name") == hub.server), None)
        if mine is None or mine.get("seconds_left") is None:
            raise web.HTTPError(404, "the hub knows no running job for this server")
        self.finish(json.dumps({k: mine.get(k) for k in ("centre", "centre_name", "job_id", "ends", "seconds_left",
                                                         "extendable_s", "extend_step_s")}))


def setup_time_left_handler(serverapp) -> None:
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], "fedhub", "api", "time-left")
    web_app.add_handlers(".*$", [(route, TimeLeftHandler)])
