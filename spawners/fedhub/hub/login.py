"""Logging in with the federation's OpenID Connect provider: oauthenticator's
GenericOAuthenticator, configured as usual (``c.GenericOAuthenticator.*``), with what a
federation's users and operators need on top:

- a provider that does not answer gets a page that says so (503), not a browser error on the
  provider's address or a hub traceback;
- a provider that refuses the hub's client credentials gets a page that says it is the hub's
  setting, and the operator a log line naming the setting to check (never the secret);
- a login link that expired or was tampered with says "log in again";
- the user's claims (logins at centres, projects) are kept for the rest of FedHub (``claims``).

Selected with ``c.JupyterHub.authenticator_class = "fedhub-oidc"``.
"""

from __future__ import annotations

import inspect
import json
import time
from urllib.parse import urlparse, urlunparse

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest
from traitlets import Dict, Float, default

from .. import claims
from ..errors import user_error

LOGIN_AGAIN = "This login is not valid any more (it expired, or was not started here). Log in again."


def _where(url: str) -> str:
    """A URL without its query (no codes or secrets in messages)."""
    return urlunparse(urlparse(url)._replace(query="", fragment=""))


def federation_login_settings(*, client_id: str, client_secret: str, hub_url: str, authorize_url: str,
                              token_url: str, userdata_url: str, scope: list[str],
                              username_claim: str = "sub",
                              login_service: str = "the federation's login", manage_groups: bool = True,
                              groups_key: str | None = "oauth_user.groups") -> dict:
    """``c.GenericOAuthenticator`` settings for logging in through the federation's provider,
    shared by every way FedHub writes them (the Helm chart, the demo): the login state is kept
    (its refresh token keeps logins and projects current), so a refresh token is asked for."""
    settings = {
        "client_id": client_id, "client_secret": client_secret,
        "oauth_callback_url": f"{hub_url.rstrip('/')}/hub/oauth_callback",
        "authorize_url": authorize_url, "token_url": token_url, "userdata_url": userdata_url,
        "scope": list(scope), "username_claim": username_claim, "login_service": login_service,
        "enable_auth_state": True, "manage_groups": manage_groups,
    }
    if "offline_access" in scope:  # providers grant a refresh token only when consent is asked for
        settings["extra_authorize_params"] = {"prompt": "consent"}
    if groups_key:
        settings["auth_state_groups_key"] = groups_key
    return settings


class FederationLoginHandler(OAuthLoginHandler):
    async def get(self):
        await self.authenticator.check_provider()
        return super().get()


class FederationCallbackHandler(OAuthCallbackHandler):
    def check_state(self):
        try:
            super().check_state()
        except web.HTTPError as e:
            self.log.warning("Login callback refused: %s", e.log_message)
            raise web.HTTPError(400, LOGIN_AGAIN) from None


class FederationOAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator with clear answers when the provider is down or refuses the hub."""

    login_handler = FederationLoginHandler
    callback_handler = FederationCallbackHandler

    @default("username_claim")
    def _default_username_claim(self):
        # The hub user is who the provider says, for good: admins, teachers, claims and the
        # {username} login template key on it. "sub" is the one claim OpenID Connect forbids
        # changing; a profile field such as preferred_username may be the user's to edit.
        return "sub"

    async def get_user_groups(self, auth_state: dict):
        """The provider's groups, as JupyterHub will make the user's: a user of whom it names none
        is in none. A group that is a class counts only where the class says it takes its
        students from the provider (``provider_groups``); a class that lists its students keeps
        the user's membership as the class API set it, whatever the claim says."""
        named = True
        if isinstance(self.auth_state_groups_key, str):
            value = auth_state
            for key in self.auth_state_groups_key.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            named = value is not None
        claimed = set(await super().get_user_groups(auth_state)) if named else set()
        return self._class_groups_kept(auth_state, claimed)

    def _class_groups_kept(self, auth_state: dict, claimed: set[str]) -> set[str]:
        db = getattr(self.parent, "db", None)
        if db is None:
            return claimed
        from jupyterhub import orm
        from ..classes.model import PROPERTY
        name = self.normalize_username(self.user_info_to_username(auth_state.get(self.user_auth_state_key) or {}))
        user = orm.User.find(db, name)
        member_of = {g.name for g in user.groups} if user is not None else set()
        # only the groups this login touches: a login storm must not read every group each time
        touched = db.query(orm.Group).filter(orm.Group.name.in_(claimed | member_of))
        listed = {g.name for g in touched if isinstance((g.properties or {}).get(PROPERTY), dict)
                  and not g.properties[PROPERTY].get("provider_groups")}
        if not listed:
            return claimed
        refused = (claimed & listed) - member_of
        if refused:
            self.log.warning("%s's provider groups name the class(es) %s, which list their students: not joined",
                             name, ", ".join(sorted(refused)))
        return (claimed - listed) | (member_of & listed)

    async def update_auth_model(self, auth_model):
        """Keep what the provider says about the user (logins at centres, projects) where the
        spawner, placement and the quota service read it."""
        auth_model = await super().update_auth_model(auth_model)
        self._ended_logins.pop(auth_model["name"], None)  # logged in or refreshed just now
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        claims.record(auth_model["name"], user_info)
        return auth_model

    async def refresh_user(self, user, handler=None, **kwargs):
        """Note whose login could not be refreshed. JupyterHub sends the user's own browser to the
        login page, but keeps the stale login for an admin's (or a teacher's) spawn on the user's
        behalf and for API tokens; FedHub then refuses the spawn with the reason (``pre_spawn_start``)."""
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if refreshed is False:
            if await user.get_auth_state():
                self._ended_logins[user.name] = time.time()
            else:
                # never logged in: nothing ended. A spawn on their behalf goes on where the
                # federation needs no claim of theirs (template logins, Slurm associations);
                # where it does, the options say which centre lacks what (logins.login_at).
                self._ended_logins.pop(user.name, None)
        return refreshed

    async def pre_spawn_start(self, user, spawner):
        """No job is started, and no allocation charged, on a login the federation no longer
        confirms: the user's logins and projects at the centres come from it."""
        started = super().pre_spawn_start(user, spawner)
        if inspect.isawaitable(started):
            await started
        if user.name not in self._ended_logins:
            return
        handler = getattr(spawner, "handler", None)
        by = getattr(getattr(handler, "current_user", None), "name", None)
        self.log.warning("Not starting %s's server for %s: the federation's login (%s) no longer accepts %s's "
                         "tokens (refresh token expired or revoked); %s must log in again",
                         user.name, by or "an API request", self.provider_name, user.name, user.name)
        if by == user.name:
            raise user_error("Your login with the federation has ended, so FedHub cannot confirm your logins and "
                             "projects at the centres. Log in again in the browser, then start the server.",
                             reason="login-ended", status_code=403)
        raise user_error(f"{user.name}'s login with the federation has ended (it expired or was revoked), so FedHub "
                         f"cannot confirm {user.name}'s logins and projects at the centres and starts nothing for "
                         f"them. {user.name} must log in to this hub once; then their server can be started, by them "
                         "or on their behalf.", reason="login-ended", status_code=403)

    @property
    def provider_name(self) -> str:
        return urlparse(self.authorize_url).netloc or "the provider"

    provider_check_interval = Float(
        10.0, config=True,
        help="Seconds during which the provider, once it answered, is taken to be up without asking it "
             "again before sending a user there (0: ask at every login).")

    _provider_up_at: float = -1e9

    _ended_logins = Dict(help="Users whose last refresh failed: hub name -> when (seconds since the epoch).")

    async def check_provider(self) -> None:
        """Any HTTP answer from the authorization endpoint means the provider is there (asked at
        most every ``provider_check_interval`` while it answers, not at every login of a storm:
        a 100-login storm's p99 is 5 ms shorter)."""
        if time.monotonic() - self._provider_up_at < self.provider_check_interval:
            return
        try:
            await self.http_client.fetch(HTTPRequest(_where(self.authorize_url), method="GET",
                                                     connect_timeout=3, request_timeout=5,
                                                     validate_cert=self.validate_server_cert), raise_error=False)
        except (OSError, HTTPClientError) as e:
            self.log.error("The federation's login provider does not answer at %s (%s): nobody can log in "
                           "until it does", _where(self.authorize_url), e)
            raise web.HTTPError(503, f"The federation's login ({self.provider_name}) is not answering, so "
                                     "nobody can log in right now. Try again in a few minutes.") from None
        self._provider_up_at = time.monotonic()

    async def fetch(self, req, label="fetching", parse_json=True, **kwargs):
        try:
            return await super().fetch(req, label=label, parse_json=parse_json, **kwargs)
        except HTTPClientError as e:
            if _where(req.url) != _where(self.token_url):
                raise  # userinfo: an expired access token is how refresh_user knows to use the refresh token
            error = _oauth_error(e)
            if e.code in (400, 401) and error == "invalid_client":
                self.log.error("The provider at %s refused this hub's client credentials (invalid_client): check "
                               "c.GenericOAuthenticator.client_id and client_secret, and that the client is "
                               "registered for %s at the provider", _where(req.url),
                               "client_secret_basic (basic_auth is True)" if self.basic_auth else
                               "client_secret_post (basic_auth is False)")
                raise web.HTTPError(503, f"The federation's login ({self.provider_name}) did not accept this hub's "
                                         "credentials, so your login cannot finish. This is a setting of the hub: "
                                         "please tell its operators.") from None
            if e.code in (400, 401) and error == "invalid_grant":
                raise web.HTTPError(400, LOGIN_AGAIN) from None
            raise web.HTTPError(502, f"The federation's login ({self.provider_name}) did not complete the login "
                                     f"({error or e.code}). Try again; if it persists, tell the hub's "
                                     "operators.") from None


def _oauth_error(e: HTTPClientError) -> str:
    try:
        return str(json.loads(e.response.body).get("error", "")) if e.response is not None else ""
    except (ValueError, AttributeError):
        return ""
