"""When would a server with these resources start at this centre? The spawn form asks as the
user changes the centre, partition or resources, so choosing by hand is as informed as "any
centre": one ``sbatch --test-only`` at that centre (the placement's own estimate), answered as
"starts now" or "about 40 min wait".

    GET /hub/api/fedhub/users/<name>/start-estimate?centre=alpha&partition=cpu&cores=2&...

Needs the ``servers`` scope for that user (the user, an admin). Options are validated exactly
as for a spawn; a bad one is a 400 naming the field.
"""

from __future__ import annotations

import json
from datetime import datetime

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from ...request import ALLOWED_OPTIONS, OptionError, parse_user_options
from ...placement import Option, estimate_all
from ...i18n import InRequestLanguage, _
from .auth import api_authenticated


class StartEstimateHandler(InRequestLanguage, APIHandler):
    @api_authenticated
    async def get(self, user_name: str):
        if not has_scope(f"servers!user={user_name}", self.parsed_scopes, db=self.db):
            raise web.HTTPError(404, "No access to resources or resources not found")
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, _("there is no user {user}").format(user=user_name))
        spawner = user.get_spawner("")
        if not hasattr(spawner, "federation"):
            raise web.HTTPError(404, _("{user}'s server is not a FedHub server").format(user=user_name))
        options = {k: self.get_argument(k) for k in ALLOWED_OPTIONS if self.get_argument(k, "")}
        try:
            request = parse_user_options(spawner.federation, options, user_name)
        except OptionError as e:
            self.set_status(400)
            self.finish(json.dumps({"status": 400, "field": e.field, "message": str(e)}))
            return
        centre = spawner.federation.centre(request.centre)
        if not spawner.monitor.health().get(centre.id, True):
            self.finish(json.dumps({"centre": centre.id, "start": None, "text": _("down")}))
            return
        option = Option(centre, centre.partition(request.partition), request.login)
        clients = {cid: w.client for cid, w in spawner.monitor.watchers.items()}
        (estimate,) = await estimate_all([option], request, user_name, clients)
        now = datetime.now()
        self.finish(json.dumps({"centre": centre.id, "start": estimate.start.isoformat() if estimate.start else None,
                                "text": estimate.describe(now)}))


ROUTES = [(r"/api/fedhub/users/([^/]+)/start-estimate", StartEstimateHandler)]
