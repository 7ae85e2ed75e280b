"""The lab's "Files at other centres" panel, through this server (which asks the hub with its own
token; that token reaches its own user's workspace and nobody else's):

    GET    {base}fedhub/api/workspace              the user's workspace at every centre, as the hub
                                                   last recorded it, with this server's centre
                                                   ("here") and where the workspace is in the file
                                                   browser ("browser_prefix": "" at its root, null
                                                   when the browser does not show it)
    POST   {base}fedhub/api/workspace              the same, read at every centre now (the panel's
                                                   "Refresh"), with "problems" by centre
    POST   {base}fedhub/api/transfers              {"from", "to", "paths"}: -> 202 the hub's transfer
    GET    {base}fedhub/api/transfers/{id}         its status, bytes, total, files, reason
    DELETE {base}fedhub/api/transfers/{id}         cancel it
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_server.utils import url_path_join
from tornado import web

from ..workspace.where import browser_prefix
from .kernels import _HubHandler, json_object_body


class WorkspaceHandler(_HubHandler):
    @web.authenticated
    async def get(self):
        await self._answer(await self.ask("GET", "workspace"))

    @web.authenticated
    async def post(self):
        await self._answer(await self.ask("POST", "workspace/scan", wait=60))  # a scan per centre

    async def _answer(self, answer: dict | None) -> None:
        if answer is None:
            return
        answer["here"] = os.environ.get("FEDHUB_CENTRE", "")
        answer["browser_prefix"] = browser_prefix(self.settings.get("server_root_dir", "."), Path.home(),
                                                  os.environ.get("FEDHUB_WORKSPACE", ""))
        self.finish(json.dumps(answer))


class StartTransferHandler(_HubHandler):
    @web.authenticated
    async def post(self):
        answer = await self.ask("POST", "transfers", json_object_body(self))
        if answer is not None:
            self.set_status(202)
            self.finish(json.dumps(answer))


class TransferHandler(_HubHandler):
    @web.authenticated
    async def get(self, transfer_id):
        await self.pass_on("GET", f"transfers/{transfer_id}")

    @web.authenticated
    async def delete(self, transfer_id):
        await self.pass_on("DELETE", f"transfers/{transfer_id}")



def setup_workspace_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    api = url_path_join(web_app.settings["base_url"], "fedhub", "api")
    web_app.add_handlers(".*$", [(url_path_join(api, "workspace"), WorkspaceHandler),
                                 (url_path_join(api, "transfers"), StartTransferHandler),
                                 (url_path_join(api, "transfers", r"([0-9a-f]{16})"), TransferHandler)])
