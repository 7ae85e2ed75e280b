"""The hub's calls to a notebook server's session routes (``fedhub_lab/server/handoff.py``): at
the job's own address, over the hub's internal TLS, with the server's own token (a server and
its successor at another centre share it). Continuing elsewhere, the snapshot before the end and
the restore after a start use them."""

from __future__ import annotations

import json

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class SessionCallError(RuntimeError):
    """A session route refused or did not answer (the message says which, in its words)."""


ContinueError = SessionCallError  # what stops a continuation: the old session is untouched


class ServerCalls:
    """The hub's calls to one of the server's jobs, at its address, over the hub's internal TLS,
    with the server's own token (the old and the new server share it)."""

    def __init__(self, spawner, ip: str, port: int):
        self.spawner = spawner
        scheme = "https" if spawner.internal_ssl else "http"
        self.base = f"{scheme}://{ip}:{port}{spawner.server.base_url}fedhub/api/session/"
        self.ssl = spawner.launch.client_ssl_context()
        self.headers = {"Authorization": f"token {spawner.api_token}"}

    def request(self, path: str, method: str, body=None, timeout: float = 600, **kw) -> HTTPRequest:
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        return HTTPRequest(self.base + path, method=method, body=data, headers=dict(self.headers),
                           ssl_options=self.ssl, request_timeout=timeout, connect_timeout=15, **kw)

    async def call(self, path: str, body: dict, timeout: float = 600) -> dict:
        try:
            response = await AsyncHTTPClient().fetch(self.request(path, "POST", body, timeout))
        except HTTPClientError as e:
            raise SessionCallError(said(e)) from None
        except OSError as e:
            raise SessionCallError(f"the server did not answer ({e})") from None
        return json.loads(response.body or b"{}")


def said(error: HTTPClientError) -> str:
    try:
        return json.loads(error.response.body).get("message") or str(error)
    except Exception:  # noqa: BLE001 - no JSON: the status line
        return str(error)
