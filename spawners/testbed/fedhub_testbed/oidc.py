"""The demo's and the tests' OpenID Connect provider on loopback (``oidc_provider.mjs``, npm's
certified ``oidc-provider``), and the hub settings that log in through it.

The hub is configured exactly as for a federation's real provider (oauthenticator's
GenericOAuthenticator through traitlets): authorization code flow with PKCE and state, the
client secret sent in the token request's body (``client_secret_post`` on both sides),
userinfo for the claims, encrypted ``auth_state``, refresh tokens (``offline_access``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fedhub.hub.login import federation_login_settings
from .centres import free_port

NODE_MODULES = os.environ.get("FEDHUB_NODE_MODULES", "/opt/fedhub/node/node_modules")
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
SCOPES = ["openid", "profile", "groups", "fedhub", "offline_access"]


@dataclass
class Person:
    """Someone the provider knows: their password and the claims it releases about them."""
    password: str
    claims: dict = field(default_factory=dict)


class LocalOIDCProvider:
    """An OpenID Connect provider on 127.0.0.1 with one confidential client, the hub."""

    def __init__(self, workdir: Path, people: dict[str, Person], *, port: int | None = None,
                 client_id: str = "fedhub-hub", client_secret: str | None = None, access_token_ttl: int = 3600):
        self.workdir = Path(workdir)
        self.people = people
        self.port = port or free_port()
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self.access_token_ttl = access_token_ttl
        self.redirect_uris: list[str] = []
        self.logout_uris: list[str] = []
        self.log_file = self.workdir / "oidc-provider.log"
        self.proc: subprocess.Popen | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def allow_hub(self, hub_url: str) -> None:
        """Register a hub's callback (and where its logout returns) with the hub's client."""
        self.redirect_uris.append(f"{hub_url}/hub/oauth_callback")
        self.logout_uris.append(f"{hub_url}/hub/login")

    def config(self) -> dict:
        return {
            "issuer": self.issuer, "port": self.port, "access_token_ttl": self.access_token_ttl,
            "cookie_keys": [secrets.token_urlsafe(32)],
            "clients": [{
                "client_id": self.client_id, "client_secret": self.client_secret, "client_name": "FedHub",
                "redirect_uris": self.redirect_uris, "post_logout_redirect_uris": self.logout_uris,
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_post",
            }],
            "users": {name: {"password": p.password, "claims": p.claims} for name, p in self.people.items()},
        }

    def start(self, timeout: float = 30) -> None:
        if not (Path(NODE_MODULES) / "oidc-provider").is_dir():
            raise RuntimeError(f"the OpenID Connect provider is not installed in {NODE_MODULES} (run `make deps`)")
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.workdir / "oidc-provider.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(self.config()))  # the passwords and the client secret: 0600
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(["node", str(SCRIPT), str(path)], stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "FEDHUB_NODE_MODULES": NODE_MODULES},
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OpenID Connect provider exited with {self.proc.returncode}:\n"
                                   + self.log_file.read_text(errors="replace")[-2000:])
            try:
                self.discovery = json.load(urllib.request.urlopen(
                    f"{self.issuer}/.well-known/openid-configuration", timeout=2))
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.2)
        raise TimeoutError(f"the OpenID Connect provider did not answer within {timeout} s; see {self.log_file}")

    def revoke(self, token: str) -> None:
        """End a token's grant at the provider, as a user's "sign out everywhere" or an account
        registry's revocation does: its access and refresh tokens stop working."""
        data = urllib.parse.urlencode({"token": token, "client_id": self.client_id,
                                       "client_secret": self.client_secret}).encode()
        with urllib.request.urlopen(self.discovery["revocation_endpoint"], data=data, timeout=10) as r:
            r.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def hub_config(self, hub_url: str, client_secret: str | None = None) -> str:
        """The hub's login through this provider, as an operator writes it for a real one."""
        d = self.discovery
        logout = (f"{d['end_session_endpoint']}?client_id={self.client_id}"
                  f"&post_logout_redirect_uri={hub_url}/hub/login")
        settings = federation_login_settings(
            client_id=self.client_id, client_secret=client_secret if client_secret is not None else self.client_secret,
            hub_url=hub_url, authorize_url=d["authorization_endpoint"], token_url=d["token_endpoint"],
            userdata_url=d["userinfo_endpoint"], scope=SCOPES)
        settings.update(allowed_users=sorted(self.people), logout_redirect_url=logout)
        return "\n".join(["# Login through the federation's OpenID Connect provider (fedhub_testbed.oidc).",
                          "c.JupyterHub.authenticator_class = 'fedhub-oidc'"]
                         + [f"c.GenericOAuthenticator.{k} = {v!r}" for k, v in settings.items()]) + "\n"
