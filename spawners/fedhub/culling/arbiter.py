"""FedHub's arbiter in jupyterhub-idle-culler (``IdleCuller.cull_arbiter_hook``): it runs in the
culler's process and decides with the federation file's timeouts, not the culler's single one.

Before it says yes it has the hub save the server's session (``POST .../server/cull``, the
culler's own token, which alone holds ``custom:fedhub:cull``); a hub that says no (the server is
continuing elsewhere, or is gone) keeps the server. A server that cannot save (it no longer
answers) is culled all the same: the hub logs why there is no snapshot.
"""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..federation import load_federation
from .decide import should_cull

log = logging.getLogger("fedhub.culler")
SAVE_TIMEOUT_S = 300  # a large session takes a while to write


class FederationArbiter:
    def __init__(self, federation_file: str, hub_api_url: str, token: str):
        self.federation = load_federation(federation_file)
        self.hub_api_url = hub_api_url.rstrip("/")
        self.token = token

    async def __call__(self, *, inactive, inactive_limit, server, **_):
        if not should_cull(self.federation, server, inactive.total_seconds()):
            return False
        user, _, name = server["full_name"].partition("/")
        path = f"servers/{quote(name, safe='')}" if name else "server"
        request = HTTPRequest(f"{self.hub_api_url}/fedhub/users/{quote(user, safe='')}/{path}/cull", method="POST",
                              headers={"Authorization": f"token {self.token}"},
                              body=json.dumps({"inactive_s": int(inactive.total_seconds())}),
                              request_timeout=SAVE_TIMEOUT_S)
        try:
            answer = json.loads((await AsyncHTTPClient().fetch(request)).body)
        except HTTPClientError as e:
            log.info("Not culling %s: the hub says %s", server["full_name"], e.response.body.decode()[:300]
                     if e.response is not None else e)
            return False
        except OSError as e:  # the hub's API unreachable for now: the next round asks again
            log.warning("Not culling %s yet: the hub's API did not answer (%s)", server["full_name"], e)
            return False
        log.info("Culling %s (idle %s s): %s", server["full_name"], int(inactive.total_seconds()),
                 answer.get("message", ""))
        return True


def from_environment() -> FederationArbiter:
    return FederationArbiter(os.environ["FEDHUB_FEDERATION_FILE"], os.environ["JUPYTERHUB_API_URL"],
                             os.environ["JUPYTERHUB_API_TOKEN"])
