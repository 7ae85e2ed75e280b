"""The notebook servers' way to the quota service: through the hub's API, which is TLS.

    GET /hub/api/fedhub/quota/api/quota/<user>   ->   the fedhub-quota service's same path

A job reaches the hub only at its API (at the centre's ``hub_connect_url``, or the login node's
forward in tunnel mode), never at the public URL, so the server's token never crosses a centre's
network in clear. The hub passes the request on over its loopback with the caller's own token;
the quota service checks that token's scopes as before.
"""

from __future__ import annotations

from jupyterhub.apihandlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .auth import api_authenticated


class QuotaRouteHandler(APIHandler):
    @api_authenticated
    async def get(self, path: str):
        base = self.settings["config"].FederatedSpawner.get("quota_service_url", "")
        if not base:
            raise web.HTTPError(404, "this hub runs no quota service")
        query = f"?{self.request.query}" if self.request.query else ""
        request = HTTPRequest(base.rstrip("/") + "/" + path + query, headers={
            "Authorization": self.request.headers.get("Authorization", ""), "Accept": "application/json"},
            request_timeout=15)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.response is None:
                raise web.HTTPError(503, f"the quota service did not answer: {e}") from None
            response = e.response
        except OSError as e:
            raise web.HTTPError(503, f"the quota service did not answer: {e}") from None
        self.set_status(response.code)
        self.set_header("Content-Type", response.headers.get("Content-Type", "application/json"))
        self.finish(response.body)


ROUTES = [(r"/api/fedhub/quota/(api/quota/[^/]+)", QuotaRouteHandler)]
