"""The notebook server's client for the hub's kernel API (``fedhub.hub.api.kernels``).

It speaks with the server's own JupyterHub token for the server's own user and server, so it can
reach nothing of anyone else's. Every call is asynchronous and bounded.
"""

from __future__ import annotations

import json
import os
import re
from contextvars import ContextVar
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..hub_tls import hub_ssl_context


# The language the hub words its answers in: the lab's (the Accept-Language of the lab's request
# being served, set by the server's handlers: LabLanguage), else the one the server started in.
_language: ContextVar[str] = ContextVar("fedhub_lab_language", default="")
_LANGUAGE_RE = re.compile(r"[A-Za-z0-9_,;=.* -]{1,200}")


class LabLanguage:
    """Mixed into the server's handlers before their base: the hub answers what follows in the
    language the lab asked in."""

    def prepare(self):
        asked = self.request.headers.get("Accept-Language", "")
        if _LANGUAGE_RE.fullmatch(asked):
            _language.set(asked)
        return super().prepare()


def accept_language() -> str:
    started_in = os.environ.get("JUPYTERHUB_FEDHUB_LANGUAGE", "").replace("_", "-")
    return _language.get() or (started_in if _LANGUAGE_RE.fullmatch(started_in) else "")


class HubKernelError(RuntimeError):
    """The hub refused or failed a kernel request; the message is the hub's, meant for the user.

    ``gone`` is set when the hub no longer knows the kernel or no longer accepts the server's
    token (it revokes the token when it stops the server, after it has ended the server's kernels).
    """

    def __init__(self, message: str, gone: bool = False):
        super().__init__(message)
        self.gone = gone


class HubKernels:
    def __init__(self, timeout: float = 15.0):
        self.api_url = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.user = os.environ.get("JUPYTERHUB_USER", "")
        self.server = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        self.timeout = timeout
        self.ssl = hub_ssl_context()

    @property
    def available(self) -> bool:
        return bool(self.api_url and self.token and self.user)

    def _url(self, path: str, query: dict) -> str:
        return f"{self.api_url}/fedhub/users/{quote(self.user, safe='')}/{path}?" + urlencode(
            {"server": self.server, **query})

    async def call(self, method: str, path: str, body: dict | None = None, query: dict | None = None,
                   wait: float = 0.0) -> dict:
        """One request; ``wait``: the seconds the hub may hold it (a long poll), added to the timeout."""
        request = HTTPRequest(self._url(path, query or {}), method=method, request_timeout=self.timeout + wait,
                              headers={"Authorization": f"token {self.token}", "Content-Type": "application/json",
                                       **({"Accept-Language": accept_language()} if accept_language() else {})},
                              body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
                              allow_nonstandard_methods=True, follow_redirects=False, ssl_options=self.ssl)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            # a revoked token is answered with a redirect to the login page (or 403)
            message = _message(e)
            revoked = e.code in (301, 302, 303, 307, 401) or message.startswith("Missing or invalid credentials")
            raise HubKernelError(message, gone=e.code == 404 or revoked) from None
        except OSError as e:
            raise HubKernelError(f"the hub did not answer ({e})") from None
        try:
            return json.loads(response.body) if response.body else {}
        except ValueError:
            raise HubKernelError(f"the hub answered {response.code} without JSON") from None

    async def centres(self) -> list[dict]:
        return (await self.call("GET", "kernel-centres"))["centres"]

    async def start(self, options: dict, key: str, curve_secretkey: str | None) -> dict:
        """Ask for the kernel; its HMAC key and CurveZMQ secret key go to the hub (TLS), which
        hands them only to the kernel's launcher."""
        curve = {"curve_secretkey": curve_secretkey} if curve_secretkey else {}
        return await self.call("POST", "kernels", {**options, "key": key, **curve})

    async def status(self, kernel_id: str, known: str = "", wait: float = 0.0) -> dict:
        """The kernel's record; with ``known`` and ``wait``, once its status is no longer ``known``
        (or after ``wait`` s): the hub answers the moment the kernel is ready."""
        if known and wait:
            return await self.call("GET", f"kernels/{kernel_id}", query={"status": known, "wait": f"{wait:g}"},
                                   wait=wait)
        return await self.call("GET", f"kernels/{kernel_id}")

    async def restart(self, kernel_id: str) -> dict:
        return await self.call("POST", f"kernels/{kernel_id}/restart")

    async def shutdown(self, kernel_id: str) -> None:
        await self.call("DELETE", f"kernels/{kernel_id}")


def _message(error: HTTPClientError) -> str:
    body = error.response.body if error.response is not None else b""
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return f"the hub answered {error.code}"
