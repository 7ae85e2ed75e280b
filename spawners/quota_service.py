"""FedHub's quota service: a JupyterHub-managed service answering allocation figures.

    GET {prefix}api/quota/{user}   every centre's figures for that user (JSON, see README)
    GET {prefix}api/health         {"status": "ok", "refreshes": N}

Authentication is JupyterHub's (tokens or OAuth); a caller may read a user's figures when the
token belongs to that user, or its scopes include reading that user (admins, and later
teachers through group scopes). Figures come from ``QuotaCache``: never a Slurm query per
request.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from .federation import load_federation
from .quota import QuotaCache, quota_report

SERVICE_NAME = "fedhub-quota"


def may_read(model: dict, target: str) -> bool:
    """Whether the authenticated ``model`` (user or service) may read ``target``'s quota."""
    if model.get("kind", "user") == "user" and model.get("name") == target:
        return True
    scopes = set(model.get("scopes", ()))
    wanted = {"admin:users", "read:users", f"read:users!user={target}", f"admin:users!user={target}"}
    return bool(scopes & wanted)


class QuotaHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self, cache: QuotaCache):
        self.cache = cache

    @web.authenticated
    async def get(self, user: str):
        if not may_read(self.current_user, user):
            raise web.HTTPError(403, f"you may read only your own quota, not {user!r}")
        figures = await self.cache.for_user(user)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(quota_report(self.cache.federation, user, figures)))

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


def make_app(federation_file: str, max_age: float) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    cache = QuotaCache(load_federation(federation_file), max_age=max_age)
    return web.Application([
        (url_path_join(prefix, "api/quota/([^/]+)"), QuotaHandler, {"cache": cache}),
        (url_path_join(prefix, "api/health"), HealthHandler, {"cache": cache}),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))


def main() -> None:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = make_app(os.environ["FEDHUB_FEDERATION"], max_age=float(os.environ.get("FEDHUB_QUOTA_MAX_AGE", "60")))
    app.listen(url.port, url.hostname)
    print(f"fedhub-quota listening on {url.hostname}:{url.port}", file=sys.stderr)
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:  # the hub stops its services with SIGINT
        pass


if __name__ == "__main__":
    main()
