"""FedHub's quota service: a JupyterHub-managed service answering allocation figures.

    GET {prefix}api/quota/{user}[?fresh=1]   every centre's figures for that user (JSON, see README)
    GET {prefix}api/health                   {"status": "ok", "refreshes": N}

It owns the hub's only cache of accounting figures (``ledger.QuotaCache``): the lab, ``quota()``,
and the hub's own spawn checks and placement all ask here, so one reading of a centre's
accounting per refresh serves everyone. ``fresh=1`` waits for figures no older than
``max_age`` instead of answering stale ones at once (spawn decisions); it never reads more often.

Authentication is JupyterHub's (tokens or OAuth): a caller may read a user's figures when the
token belongs to that user, or its scopes include reading that user (admins, and later teachers
through group scopes). Configured as a traitlets application: ``--QuotaService.federation_file``
and ``--QuotaService.max_age`` on its command line (``fedhub.hub.setup`` writes them from
``c.QuotaService`` in jupyterhub_config.py).
"""

from __future__ import annotations

import json
import os
import sys

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web
from traitlets import Float, Integer, Unicode
from traitlets.config import Application

from .. import claims
from ..service_app import listen, run_until_stopped, ssh_sockets_in
from ..federation import load_federation
from .ledger import QuotaCache, quota_report
from ..culling.returned import CulledLedger

SERVICE_NAME = "fedhub-quota"


def may_read(model: dict, target: str) -> bool:
    """Whether the authenticated ``model`` (user or service) may read ``target``'s quota."""
    if model.get("kind", "user") == "user" and model.get("name") == target:
        return True
    scopes = set(model.get("scopes", ()))
    wanted = {"admin:users", "read:users", f"read:users!user={target}", f"admin:users!user={target}"}
    return bool(scopes & wanted)


class QuotaHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self, cache: QuotaCache, culled: CulledLedger | None):
        self.cache = cache
        self.culled = culled

    @web.authenticated
    async def get(self, user: str):
        if not may_read(self.current_user, user):
            raise web.HTTPError(403, f"you may read only your own quota, not {user!r}")
        fresh = self.get_argument("fresh", "0") in ("1", "true")
        figures = await self.cache.for_user(user, fresh=fresh)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(quota_report(self.cache.federation, user, figures, self.culled)))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))


class HealthHandler(web.RequestHandler):
    def initialize(self, cache: QuotaCache):
        self.cache = cache

    def get(self):
        self.finish({"status": "ok", "refreshes": self.cache.refreshes})


class QuotaService(Application):
    name = "fedhub-quota"
    description = "FedHub's allocation figures, as a JupyterHub service"

    federation_file = Unicode("", help="The federation file (the hub's).").tag(config=True)
    max_age = Float(60.0, help="Seconds a centre's accounting figures are reused before it is read again "
                               "(one sacct and one sacctmgr per centre and refresh, for all users).").tag(config=True)
    timeout = Float(20.0, help="Seconds an accounting command may take.").tag(config=True)
    port = Integer(8082, help="Port the service listens on (127.0.0.1); the hub's proxy routes to it.").tag(config=True)
    state_dir = Unicode("", help="The hub's state directory, where the users' claims (logins at centres) "
                                 "are kept.").tag(config=True)

    aliases = {"federation-file": "QuotaService.federation_file", "max-age": "QuotaService.max_age"}

    def make_app(self) -> web.Application:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
        claims.configure(self.state_dir or None)
        ssh_sockets_in(self.state_dir)
        self.cache = QuotaCache(load_federation(self.federation_file), max_age=self.max_age, timeout=self.timeout)
        return web.Application([
            (url_path_join(prefix, "api/quota/([^/]+)"), QuotaHandler,
             {"cache": self.cache, "culled": CulledLedger(self.state_dir) if self.state_dir else None}),
            (url_path_join(prefix, "api/health"), HealthHandler, {"cache": self.cache}),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ], cookie_secret=os.urandom(32))

    def start(self) -> None:
        where = listen(self.make_app(), SERVICE_NAME, self.port, "c.QuotaService.port")
        print(f"fedhub-quota listening on {where} (max-age {self.max_age:g} s)", file=sys.stderr)
        run_until_stopped(ioloop.IOLoop.current())  # the hub stops its services with SIGINT


main = QuotaService.launch_instance

if __name__ == "__main__":
    main()
