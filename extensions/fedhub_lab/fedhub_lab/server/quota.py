"""``GET {base_url}fedhub/api/quota``: the lab's view of the user's allocations.

Answers 200 with ``{"available": true, "centre", "centre_name", "quota": <service report>}``,
404 when this server has no quota service (the lab then hides its status item), 503 when the
service does not answer in ``FedHubLab.timeout`` seconds, and the service's own status
(e.g. 403) otherwise. The fetch is asynchronous: a slow service never blocks the server.
"""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float
from traitlets.config import Configurable

from ..quota_source import QuotaSource, QuotaUnavailable, service_message


class FedHubLab(Configurable):
    timeout = Float(5.0, help="Seconds to wait for the quota service before answering 503.").tag(config=True)


class QuotaProxyHandler(APIHandler):
    def initialize(self, settings: FedHubLab):
        self.fedhub = settings

    @web.authenticated
    async def get(self):
        try:
            source = QuotaSource.from_env()
            report = await self._fetch(source)
        except QuotaUnavailable as e:
            if e.status >= 500:
                self.log.warning("FedHub quota: %s", e)
            self.set_status(e.status)
            self.finish(json.dumps({"available": False, "status": e.status, "message": str(e)}))
            return
        self.finish(json.dumps(source.envelope(report)))

    async def _fetch(self, source: QuotaSource) -> dict:
        request = HTTPRequest(source.url, headers=source.headers, connect_timeout=self.fedhub.timeout,
                              request_timeout=self.fedhub.timeout, ssl_options=source.ssl_context())
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.code == 599:  # tornado's own code for a timeout or a dropped connection
                raise QuotaUnavailable(503, f"the quota service at {source.quota_url} did not answer within "
                                            f"{self.fedhub.timeout:.0f} s ({e.message})") from None
            body = e.response.body if e.response is not None else b""
            if e.code >= 500:
                raise QuotaUnavailable(503, f"the quota service at {source.quota_url} failed: "
                                            f"{service_message(e.code, body)}") from None
            raise QuotaUnavailable(e.code, service_message(e.code, body)) from None
        except OSError as e:
            raise QuotaUnavailable(503, f"the quota service at {source.quota_url} did not answer: {e}") from None
        try:
            return json.loads(response.body)
        except ValueError:
            raise QuotaUnavailable(503, "the quota service answered something that is not JSON") from None


def setup_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    settings = FedHubLab(config=serverapp.config, parent=serverapp)
    route = url_path_join(web_app.settings["base_url"], "fedhub", "api", "quota")
    web_app.add_handlers(".*$", [(route, QuotaProxyHandler, {"settings": settings})])
    serverapp.log.info("FedHub quota handler at %s", route)
