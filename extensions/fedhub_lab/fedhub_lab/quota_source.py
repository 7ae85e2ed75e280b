"""Where this server's quota figures come from: the FedHub quota service, asked with the
server's own token. Shared by the server handler (async) and ``quota()`` (in the kernel).

FedHub's job script exports ``FEDHUB_CENTRE``, ``FEDHUB_CENTRE_NAME`` and ``FEDHUB_QUOTA_URL``;
JupyterHub provides ``JUPYTERHUB_USER`` and ``JUPYTERHUB_API_TOKEN``. Without a quota URL the
server was not started by a FedHub with a quota service, and everything stays hidden.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote

from .hub_tls import hub_ssl_context


class QuotaUnavailable(Exception):
    """The quota service is not configured (``status`` 404) or does not answer (503)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class QuotaSource:
    quota_url: str
    user: str
    token: str
    centre: str
    centre_name: str

    @classmethod
    def from_env(cls, env=os.environ) -> "QuotaSource":
        url = env.get("FEDHUB_QUOTA_URL", "")
        if not url:
            raise QuotaUnavailable(404, "this server was not started by a FedHub with a quota service "
                                        "(FEDHUB_QUOTA_URL is not set)")
        return cls(url if url.endswith("/") else url + "/", env.get("JUPYTERHUB_USER", ""),
                   env.get("JUPYTERHUB_API_TOKEN", ""), env.get("FEDHUB_CENTRE", ""),
                   env.get("FEDHUB_CENTRE_NAME", env.get("FEDHUB_CENTRE", "")))

    @property
    def url(self) -> str:
        return f"{self.quota_url}api/quota/{quote(self.user, safe='')}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Accept": "application/json"}

    def ssl_context(self):
        """The hub's TLS (the quota service is reached through the hub's API)."""
        return hub_ssl_context() if self.url.startswith("https:") else None

    def envelope(self, report: dict) -> dict:
        """What the lab sees: the service's report plus which centre this server runs at."""
        return {"available": True, "centre": self.centre, "centre_name": self.centre_name, "quota": report}

    def fetch(self, timeout: float = 5.0) -> dict:
        """Blocking fetch, for the kernel (``quota()``); the server handler uses tornado's client."""
        request = urllib.request.Request(self.url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context()) as response:
                return self.envelope(json.load(response))
        except urllib.error.HTTPError as e:
            raise QuotaUnavailable(e.code if e.code < 500 else 503, service_message(e.code, e.read())) from None
        except (OSError, ValueError) as e:
            raise QuotaUnavailable(503, f"the quota service at {self.quota_url} did not answer: {e}") from None


def service_message(status: int, body: bytes) -> str:
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return f"the quota service answered HTTP {status}"
