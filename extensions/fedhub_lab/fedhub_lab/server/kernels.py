"""The lab's view of kernels at centres, from the notebook server (which asks the hub with its own
token, so the browser needs none and sees only this server's kernels):

    GET    {base}fedhub/api/kernel-centres    where a kernel may run, or why not (the dialog); with
                                              ?suggest_from=C, where one leaving C would start soonest
    GET    {base}fedhub/api/kernels           this server's kernels at centres: status, Slurm's words,
                                              when the walltime ends, the server's kernel id, and
                                              whether a move is starting it
    DELETE {base}fedhub/api/kernels/{id}      cancel a wait (or end a kernel): its job is cancelled
    POST   {base}fedhub/api/kernelspecs       {centre, partition, cores, ...}: checked by the hub like
                                              a spawn; answers a kernelspec name to start with them
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..provisioner.hub_client import HubKernelError, HubKernels, LabLanguage
from ..provisioner.provisioner import jupyter_kernel_ids
from ..provisioner.specs import spec_for_request


def json_object_body(handler) -> dict:
    """The request's body as a JSON object, or a 400 that says what is wrong with it."""
    try:
        body = json.loads(handler.request.body or b"{}")
    except ValueError:
        raise web.HTTPError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPError(400, "the body must be a JSON object")
    return body


class _HubHandler(LabLanguage, APIHandler):
    def hub(self) -> HubKernels:
        hub = HubKernels()
        if not hub.available:
            raise web.HTTPError(404, "this server was not started by FedHub (no JupyterHub API here)")
        return hub

    async def ask(self, *args, **kwargs) -> dict | None:
        """The hub's answer; or None, once its refusal was passed on (400, in its words)."""
        try:
            return await self.hub().call(*args, **kwargs)
        except HubKernelError as e:
            self.set_status(400)
            self.finish(json.dumps({"message": str(e)}))
            return None

    async def pass_on(self, method: str, path: str) -> None:
        """The hub's answer about one record (a continuation, a transfer), as it is: 404 when the
        hub no longer knows it, 409 when it refused."""
        try:
            answer = await self.hub().call(method, path)
        except HubKernelError as e:
            raise web.HTTPError(404 if e.gone else 409, str(e)) from None
        self.finish(json.dumps(answer))


class KernelCentresHandler(_HubHandler):
    @web.authenticated
    async def get(self):
        away = self.get_argument("suggest_from", "")
        answer = await self.ask("GET", "kernel-centres", query={"suggest_from": away} if away else None)
        if answer is None:
            return
        # where this server (and the kernels beside it) runs, for the lab's status bar
        answer["server_centre"] = {"id": os.environ.get("FEDHUB_CENTRE", ""),
                                   "name": os.environ.get("FEDHUB_CENTRE_NAME", "")}
        self.finish(json.dumps(answer))


class KernelsHandler(_HubHandler):
    @web.authenticated
    async def get(self):
        answer = await self.ask("GET", "kernels")
        if answer is None:
            return
        ours = jupyter_kernel_ids()  # which of this server's kernels each record is
        movers = self.settings.get("fedhub_movers")
        moving = movers.targets() if movers is not None else set()
        for record in answer.get("kernels", []):
            record["kernel_id"] = ours.get(record["id"], "")
            record["move_target"] = bool(record["kernel_id"]) and record["kernel_id"] in moving
        self.finish(json.dumps(answer))


class KernelHandler(_HubHandler):
    @web.authenticated
    async def delete(self, kernel_id):
        try:
            await self.hub().shutdown(kernel_id)
        except HubKernelError as e:
            self.set_status(400)
            return self.finish(json.dumps({"message": str(e)}))
        self.set_status(204)
        self.finish()


class KernelSpecsHandler(_HubHandler):
    @web.authenticated
    async def post(self):
        options = json_object_body(self)
        try:
            name = await spec_for_request(self.hub(), self.kernel_spec_manager, options)
        except HubKernelError as e:
            self.set_status(400)
            return self.finish(json.dumps({"message": str(e)}))
        except RuntimeError as e:
            raise web.HTTPError(500, str(e)) from None
        manager = self.kernel_spec_manager
        self.finish(json.dumps({"name": name, "display_name": manager.get_kernel_spec(name).display_name}))


def setup_kernel_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], "fedhub", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "kernel-centres"), KernelCentresHandler),
        (url_path_join(base, "kernels"), KernelsHandler),
        (url_path_join(base, "kernels", r"([0-9a-f]{16})"), KernelHandler),
        (url_path_join(base, "kernelspecs"), KernelSpecsHandler),
    ])
