"""The user's workspace at every centre, and files between two centres' workspaces (issue 25):

    GET    /hub/api/fedhub/users/<user>/workspace        the files the hub last recorded at each
           centre: {"centres": [{"id", "name", "folder"}], "files": [{"path", "size", "mtime",
           "centre" (holding the newest version), "at": {centre: "newest" | "older"}, "large"}]}
    POST   /hub/api/fedhub/users/<user>/workspace/scan   read the workspace at every centre now (as
           the user), record it, and answer the same, with "problems" (a centre that did not answer)

    POST   /hub/api/fedhub/users/<user>/transfers        {"from": "<centre>", "to": "<centre>",
           "paths": ["data/run1.csv", "notebooks/"]} -> 202 {"id", "url", ...}; a bad field is a
           400 naming it ({"status", "field", "message"}), and nothing is started
    GET    /hub/api/fedhub/users/<user>/transfers        the user's transfers
    GET    /hub/api/fedhub/users/<user>/transfers/<id>   status (queued, copying, done, failed,
           cancelled), bytes, total, files, reason
    DELETE /hub/api/fedhub/users/<user>/transfers/<id>   cancel; the target keeps nothing of it
           but the files that arrived whole

A transfer cut short (a dropped connection) is tried again from where it stopped; ``resumed``
says how many bytes were not sent again. The bytes travel as the user's own login at both
centres (``workspace/transfer.py``). Who may: whoever may start and stop the user's servers
(JupyterHub's ``servers`` scope: the user, admins, a class's teachers), and the user's own
servers with their token (``custom:fedhub:workspace!user``, for the lab's panel). Anyone else
gets 403, said alike whether or not the user exists.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from ...logins import NoLogin
from ...workspace import sync, transfers
from ...i18n import InRequestLanguage, _
from .auth import api_authenticated

WORKSPACE_SCOPE = "custom:fedhub:workspace"


class _TransfersHandler(InRequestLanguage, APIHandler):
    def checked_user(self, user_name: str):
        if not any(has_scope(f"{scope}!user={user_name}", self.parsed_scopes, db=self.db)  # said alike whether or not
                   for scope in ("servers", WORKSPACE_SCOPE)):
            raise web.HTTPError(403, _("you may not see or move {user}'s files: a user moves their own files (a "  # the user exists
                                       "teacher their class's, an admin anyone's)").format(user=user_name))
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, _("there is no user {user}").format(user=user_name))
        return user

    def refuse(self, status: int, field: str, message: str):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status, "field": field, "message": message}))

    def answer(self, record, status: int = 200):
        url = f"{self.hub.base_url}api/fedhub/users/{quote(record.user, safe='')}/transfers/{record.id}"
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if status == 202:
            self.set_header("Location", url)
        self.finish(json.dumps({**record.public(), "url": url}))

    def find(self, user_name: str, transfer_id: str):
        self.checked_user(user_name)
        record = transfers.transfers().get(transfer_id)
        if record is None or record.user != user_name:
            raise web.HTTPError(404, _("no transfer {id} of {user}'s").format(id=transfer_id, user=user_name))
        return record


class TransfersHandler(_TransfersHandler):
    @api_authenticated
    def get(self, user_name: str):
        self.checked_user(user_name)
        mine = [t.public() for t in transfers.transfers().values() if t.user == user_name]
        self.finish(json.dumps({"transfers": mine}))

    @api_authenticated
    def post(self, user_name: str):
        user = self.checked_user(user_name)
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.refuse(400, "body", 'the body must be a JSON object, e.g. {"from": "alpha", "to": "gamma", '
                                            '"paths": ["data/"]}')
        federation = user.spawner.federation
        ends = {}
        for name in ("from", "to"):
            centre = federation.centre(body.get(name) or "")
            if centre is None:
                return self.refuse(400, name, _("{given} is not a centre; choose one of: {centres}").format(
                    given=repr(body.get(name)), centres=", ".join(federation.centre_ids)))
            ends[name] = centre
        if ends["from"].id == ends["to"].id:
            return self.refuse(400, "to", _("give another centre than the one the files come from"))
        try:
            paths = transfers.checked_paths(body.get("paths"))
        except transfers.PathRefused as e:
            return self.refuse(400, "paths", str(e))
        try:
            record = transfers.begin(user_name, ends["from"], ends["to"], paths,
                                     sync.index_of(self.db.get_bind()))
        except NoLogin as e:
            return self.refuse(403, "from" if e.centre.id == ends["from"].id else "to", str(e))
        self.answer(record, 202)


class WorkspaceHandler(_TransfersHandler):
    @api_authenticated
    def get(self, user_name: str):
        user = self.checked_user(user_name)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(sync.listing(sync.index_of(self.db.get_bind()), user.spawner.federation, user_name)))


class WorkspaceScanHandler(_TransfersHandler):
    @api_authenticated
    async def post(self, user_name: str):
        user = self.checked_user(user_name)
        store, federation = sync.index_of(self.db.get_bind()), user.spawner.federation
        problems = await sync.record_everywhere(store, federation, user_name)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({**sync.listing(store, federation, user_name), "problems": problems}))


class TransferHandler(_TransfersHandler):
    @api_authenticated
    def get(self, user_name: str, transfer_id: str):
        self.answer(self.find(user_name, transfer_id))

    @api_authenticated
    def delete(self, user_name: str, transfer_id: str):
        record = self.find(user_name, transfer_id)
        if not transfers.cancel(record):
            return self.refuse(409, "status", _("the transfer is {status}; it can no longer be cancelled").format(
                status=record.status))
        self.answer(record, 202)


ROUTES = [(r"/api/fedhub/users/([^/]+)/workspace", WorkspaceHandler),
          (r"/api/fedhub/users/([^/]+)/workspace/scan", WorkspaceScanHandler),
          (r"/api/fedhub/users/([^/]+)/transfers", TransfersHandler),
          (r"/api/fedhub/users/([^/]+)/transfers/([0-9a-f]{16})", TransferHandler)]
