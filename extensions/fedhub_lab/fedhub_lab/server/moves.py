"""Moves through the notebook server (only its user reaches it: JupyterHub's own check):

    POST   {base}fedhub/api/kernels/{kernel id}/move   {"centre": "gamma", partition, project, cores,
                                                        memory, walltime, gpus, gpu_type,
                                                        "on_unmovable": "ask" | "switch" | "cancel",
                                                        "heartbeat": seconds (the lab: 15; 0 never)}
                                                       -> 202 {"id", "url", ...the move}
    GET    {base}fedhub/api/moves                      this server's moves
    GET    {base}fedhub/api/moves/{id}                 phase, progress, the kernel switched to,
                                                       what did not move
    POST   {base}fedhub/api/moves/{id}/choice          {"switch": true | false} when it asks
    DELETE {base}fedhub/api/moves/{id}                 cancel: the kernel stays where it was
"""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .kernels import json_object_body
from ..provisioner.hub_client import HubKernelError, LabLanguage
from ..moves.mover import Movers

MOVE_KEYS = ("on_unmovable", "heartbeat")  # the move's own; every other key is the target's option


class _MoveHandler(LabLanguage, APIHandler):
    @property
    def movers(self) -> Movers:
        return self.settings["fedhub_movers"]

    def answer(self, move, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps({**move.public(), "url": self.move_url(move.id)}))

    def move_url(self, move_id: str) -> str:
        return url_path_join(self.base_url, "fedhub", "api", "moves", move_id)

    def find(self, move_id: str):
        try:
            return self.movers.get(move_id)
        except KeyError:
            raise web.HTTPError(404, f"no move {move_id} on this server") from None


class StartMoveHandler(_MoveHandler):
    @web.authenticated
    async def post(self, kernel_id):
        body = json_object_body(self)
        if not body.get("centre"):
            raise web.HTTPError(400, "centre: say where the kernel should move to")
        try:
            heartbeat = float(body.get("heartbeat", 0) or 0)
        except (TypeError, ValueError):
            raise web.HTTPError(400, "heartbeat: seconds, e.g. 15") from None
        try:
            # the target's options go to the hub, which checks them (and refuses an unknown one by name)
            move = await self.movers.start(kernel_id, {k: v for k, v in body.items() if k not in MOVE_KEYS},
                                           body.get("on_unmovable", "ask"), heartbeat)
        except KeyError as e:
            raise web.HTTPError(404, str(e.args[0])) from None
        except ValueError as e:
            raise web.HTTPError(409 if "already" in str(e) else 400, str(e)) from None
        except HubKernelError as e:  # the hub's words on the target: resources, allocation, login
            self.set_status(400)
            return self.finish(json.dumps({"message": str(e)}))
        self.set_header("Location", self.move_url(move.id))
        self.answer(move, 202)


class MovesHandler(_MoveHandler):
    @web.authenticated
    def get(self):
        self.finish(json.dumps({"moves": [m.public() for m in self.movers.moves.values()]}))


class MoveHandler(_MoveHandler):
    @web.authenticated
    def get(self, move_id):
        self.answer(self.find(move_id))

    @web.authenticated
    def delete(self, move_id):
        move = self.find(move_id)
        try:
            self.movers.cancel(move_id)
        except ValueError as e:
            raise web.HTTPError(409, str(e)) from None
        self.answer(move, 202)


class MoveChoiceHandler(_MoveHandler):
    @web.authenticated
    def post(self, move_id):
        self.find(move_id)
        switch = json_object_body(self).get("switch")
        if not isinstance(switch, bool):
            raise web.HTTPError(400, "switch: true (move without what cannot move) or false (cancel the move)")
        try:
            move = self.movers.choose(move_id, switch)
        except ValueError as e:
            raise web.HTTPError(409, str(e)) from None
        self.answer(move)


def setup_move_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    web_app.settings["fedhub_movers"] = Movers(serverapp)
    base = url_path_join(web_app.settings["base_url"], "fedhub", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "kernels", r"([0-9a-f-]{36})", "move"), StartMoveHandler),
        (url_path_join(base, "moves"), MovesHandler),
        (url_path_join(base, "moves", r"([0-9a-f]{16})"), MoveHandler),
        (url_path_join(base, "moves", r"([0-9a-f]{16})", "choice"), MoveChoiceHandler),
    ])
