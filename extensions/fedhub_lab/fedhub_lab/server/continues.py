"""The lab's "Continue at another centre", through this server (which asks the hub with its own
token; that token may continue this server and no other):

    POST   {base}fedhub/api/continue          {"centre": "<id>" | "auto", resources...}
                                              -> 202 the hub's continuation {"id", "status", ...}
    GET    {base}fedhub/api/continue/{id}     its status, phase and message
    DELETE {base}fedhub/api/continue/{id}     cancel it (before the switch)
    POST   {base}fedhub/api/extend            {"minutes": N}: where the centre allows it, a longer
                                              walltime for this server's job (the hub's answer)

After the switch the same URL reaches the server at the new centre, which answers the same
questions with the same token: the page that started it follows it to the end.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from jupyter_server.utils import url_path_join
from tornado import web

from .kernels import _HubHandler, json_object_body


class StartContinueHandler(_HubHandler):
    @web.authenticated
    async def post(self):
        hub = self.hub()
        path = f"servers/{quote(hub.server, safe='')}/continue" if hub.server else "server/continue"
        answer = await self.ask("POST", path, json_object_body(self))
        if answer is not None:
            self.set_status(202)
            self.finish(json.dumps(answer))


class ExtendHandler(_HubHandler):
    @web.authenticated
    async def post(self):
        hub = self.hub()
        path = f"servers/{quote(hub.server, safe='')}/extend" if hub.server else "server/extend"
        answer = await self.ask("POST", path, json_object_body(self))
        if answer is not None:
            self.finish(json.dumps(answer))


class ContinueHandler(_HubHandler):
    @web.authenticated
    async def get(self, continue_id):
        await self.pass_on("GET", f"continues/{continue_id}")

    @web.authenticated
    async def delete(self, continue_id):
        await self.pass_on("DELETE", f"continues/{continue_id}")



def setup_continue_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], "fedhub", "api", "continue")
    web_app.add_handlers(".*$", [(base, StartContinueHandler),
                                 (url_path_join(base, r"([0-9a-f]{16})"), ContinueHandler),
                                 (url_path_join(web_app.settings["base_url"], "fedhub", "api", "extend"),
                                  ExtendHandler)])
