"""Logging in through the federation's OpenID Connect provider: a real provider (npm
oidc-provider) on loopback, real hubs running the project's hub config with FedHub's
authenticator (oauthenticator's GenericOAuthenticator), real Chromium for the login pages.

A second hub is configured with a wrong client secret, as an operator might; the provider is
stopped for the last test. Every failure is a page that says what happened, with no
traceback in the hub's log and no server started.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from html import unescape

import pytest
import requests

from conftest import CHROMIUM, HUB_CONFIG, TEST_HUB_CONFIG, TEST_USERS, HubAPI
from fedhub.demo.hub import LocalHub
from fedhub.demo.oidc import LocalOIDCProvider, Person

USER, OTHER = TEST_USERS[0], TEST_USERS[1]
PASSWORD = "right-horse-battery"


@pytest.fixture(scope="module")
def provider(centres):
    people = {USER: Person(PASSWORD, {"groups": ["researchers", "climate-course"]}),
              OTHER: Person(PASSWORD, {"groups": ["researchers"]})}
    return LocalOIDCProvider(centres.root / "oidc", people)


@pytest.fixture(scope="module")
def hubs(centres, provider):
    """The hub as configured, and one whose client secret is wrong (both registered first)."""
    good = LocalHub(centres.federation_file, centres.root / "hub-oidc", config_file=HUB_CONFIG,
                    users=TEST_USERS, api_token=secrets.token_hex(24), extra_config=TEST_HUB_CONFIG, oidc=provider)
    wrong = LocalHub(centres.federation_file, centres.root / "hub-oidc-wrong", config_file=HUB_CONFIG,
                     users=TEST_USERS, api_token=secrets.token_hex(24), oidc=provider,
                     extra_config=TEST_HUB_CONFIG + "c.GenericOAuthenticator.client_secret = 'not-the-secret'\n")
    provider.start()
    try:
        good.start()
        wrong.start()
        yield good, wrong
    finally:
        good.stop()
        wrong.stop()
        provider.stop()


def error_text(page_html: str) -> str:
    """The message of JupyterHub's error page, as a user reads it."""
    found = re.search(r"<h1>(.*?)</h1>", page_html, re.S)
    return unescape(re.sub(r"\s+", " ", found.group(1))).strip() if found else ""


def no_traceback(hub: LocalHub) -> None:
    assert "Traceback" not in hub.log_file.read_text(errors="replace"), hub.log_tail()


def test_a_user_logs_in_through_the_federation_provider_and_lands_on_the_form(hubs, browser):
    hub, _ = hubs
    page = browser.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{hub.url}/hub/login")
        page.get_by_text("Sign in with the federation's login").click()
        page.locator("#login").wait_for()
        assert page.url.startswith(hub.oidc.issuer + "/interaction/")

        page.fill("#login", USER)
        page.fill("#password", "wrong")
        page.click("#login-submit")
        assert page.locator("#login-error").inner_text() == "Unknown username or wrong password."

        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{hub.url}/hub/spawn*")
        assert page.locator("select[name=centre]").count() == 1

        api = HubAPI(hub)
        model = api.get(f"/users/{USER}").json()
        # the provider's groups claim became the user's JupyterHub groups
        assert sorted(model["groups"]) == ["climate-course", "researchers"]
        # auth_state: the tokens, a refresh token among them (offline_access), encrypted at rest
        state = model["auth_state"]
        assert state["access_token"] and state["refresh_token"], sorted(state)
        assert state["oauth_user"]["preferred_username"] == USER
        with sqlite3.connect(hub.workdir / "jupyterhub.sqlite") as db:
            (stored,) = db.execute("select encrypted_auth_state from users where name = ?", (USER,)).fetchone()
        assert stored and state["refresh_token"].encode() not in stored and b"refresh_token" not in stored

        # logout ends the hub's session, then offers to end the provider's, and returns to the hub
        page.goto(f"{hub.url}/hub/logout")
        page.locator("#logout-yes").wait_for()
        assert page.request.get(f"{hub.url}/hub/api/user").status == 403
        page.click("#logout-yes")
        page.wait_for_url(f"{hub.url}/hub/login**")
        page.get_by_text("Sign in with the federation's login").click()
        page.locator("#login").wait_for()  # the provider asks again: its session ended too
        no_traceback(hub)
    finally:
        page.close()


def test_a_forged_or_replayed_callback_says_log_in_again(hubs):
    hub, _ = hubs
    r = requests.get(f"{hub.url}/hub/oauth_callback?code=forged&state=forged", timeout=30)
    assert r.status_code == 400
    assert error_text(r.text) == ("400 : This login is not valid any more (it expired, or was not started here). "
                                  "Log in again.")
    no_traceback(hub)


def test_a_wrong_client_secret_is_a_clear_page_and_logs_the_setting_to_check(hubs):
    _, wrong = hubs
    s = requests.Session()
    form = s.get(f"{wrong.url}/hub/oauth_login", timeout=30)
    r = s.post(form.url + "/login", data={"login": OTHER, "password": PASSWORD}, timeout=30)
    assert r.status_code == 503 and r.url.startswith(f"{wrong.url}/hub/oauth_callback")
    assert "did not accept this hub's credentials, so your login cannot finish. This is a setting of the hub" \
        in error_text(r.text)
    log = wrong.log_file.read_text()
    assert "refused this hub's client credentials (invalid_client): check c.GenericOAuthenticator.client_id " \
           "and client_secret" in log
    assert "not-the-secret" not in log
    assert s.get(f"{wrong.url}/hub/api/user", timeout=30).status_code == 403  # not logged in
    assert HubAPI(wrong).get(f"/users/{OTHER}").json()["servers"] == {}
    no_traceback(wrong)


def test_a_provider_that_is_down_is_a_clear_page_not_a_browser_error(hubs, provider):
    hub, _ = hubs
    provider.stop()
    r = requests.get(f"{hub.url}/hub/oauth_login", timeout=30, allow_redirects=False)
    assert r.status_code == 503
    assert error_text(r.text) == (f"503 : The federation's login (127.0.0.1:{provider.port}) is not answering, so "
                                  "nobody can log in right now. Try again in a few minutes.")
    assert "The federation's login provider does not answer at" in hub.log_file.read_text()
    no_traceback(hub)


pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")
