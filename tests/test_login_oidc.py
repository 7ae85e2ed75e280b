"""Logging in through the federation's OpenID Connect provider: a real provider (npm
oidc-provider) on loopback, real hubs running the project's hub config with FedHub's
authenticator (oauthenticator's GenericOAuthenticator), real Chromium for the login pages.

A second hub is configured with a wrong client secret, as an operator might; the provider is
stopped for the last test. Every failure is a page that says what happened, with no
traceback in the hub's log and no server started.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import subprocess
import time
from html import unescape
from pathlib import Path

import pytest
import requests

from helpers.support import CHROMIUM
from helpers.testbed import (HUB_CONFIG, TEST_HUB_CONFIG, TEST_USERS, HubAPI, centre_entry, federation_variant,
                             live_jobs, slurm, wait_for)
from fedhub_testbed.hub import LocalHub
from fedhub_testbed.oidc import LocalOIDCProvider, Person
from helpers.support import oidc_log_in, run_lab_command

USER, OTHER, THIRD = TEST_USERS
PASSWORD = "right-horse-battery"
SECOND_PROJECT = f"proj_{USER}_ml"
ACCESS_TOKEN_SECONDS = 10
IMPOSTOR = "fhimpostor"
SYSTEM_LOGIN = "fhsys"  # a system account (uid below 1000) with a shell, at beta's login node


@pytest.fixture(scope="module")
def provider(centres):
    """The federation's people. Logins at gamma come only from the provider's centre_logins claim;
    the third person's claims are hostile (root; the login the template gives another user)."""
    people = {USER: Person(PASSWORD, {"groups": ["researchers", "climate-course"],
                                      "centre_logins": {"gamma": USER},
                                      "projects": {"alpha": [f"proj_{USER}", SECOND_PROJECT]}}),
              OTHER: Person(PASSWORD, {"groups": ["researchers"], "projects": {"alpha": ["x; rm"]}}),
              THIRD: Person(PASSWORD, {"centre_logins": {"gamma": "root", "alpha": OTHER, "beta": SYSTEM_LOGIN}}),
              # someone who edited their profile's username to be USER's (their sub is their own)
              IMPOSTOR: Person(PASSWORD, {"preferred_username": USER, "groups": ["climate-course"]})}
    # access tokens expire quickly, so a spawn after a wait must use the refresh token
    return LocalOIDCProvider(centres.root / "oidc", people, access_token_ttl=ACCESS_TOKEN_SECONDS)


@pytest.fixture(scope="module")
def federation(centres):
    def claimed_logins(doc):
        centre_entry(doc, "gamma")["logins"] = {"claim": "centre_logins", "template": None}
        centre_entry(doc, "gamma")["projects"] = {"slurm_associations": True}
        centre_entry(doc, "alpha")["logins"] = {"claim": "centre_logins"}  # else the template
        centre_entry(doc, "beta")["logins"] = {"claim": "centre_logins", "template": None}  # ssh: uid read there
        centre_entry(doc, "alpha")["projects"] = {"claim": "projects"}
        centre_entry(doc, "alpha").pop("hub_connect_url", None)  # the session hub's port
    if subprocess.run(["id", SYSTEM_LOGIN], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "-m", "-s", "/bin/bash", SYSTEM_LOGIN], check=True)
    # the user's second project at alpha, as the centre's Slurm knows it
    slurm(centres, "alpha", "sacctmgr", "-i", "add", "account", SECOND_PROJECT, "cluster=alpha")
    slurm(centres, "alpha", "sacctmgr", "-i", "add", "user", USER, f"account={SECOND_PROJECT}", "cluster=alpha")
    # and at gamma, where projects are the login's Slurm associations
    slurm(centres, "gamma", "sacctmgr", "-i", "add", "account", SECOND_PROJECT, "cluster=gamma")
    slurm(centres, "gamma", "sacctmgr", "-i", "add", "user", USER, f"account={SECOND_PROJECT}", "cluster=gamma")
    return federation_variant(centres, "claimed-logins.yaml", claimed_logins)


@pytest.fixture(scope="module")
def hubs(centres, provider, federation):
    """The hub as configured, and one whose client secret is wrong (both registered first)."""
    # the provider is asked whether it answers at every login, so its stop shows at once
    good = LocalHub(federation, centres.root / "hub-oidc", config_file=HUB_CONFIG, users=TEST_USERS,
                    api_token=secrets.token_hex(24), oidc=provider,
                    extra_config=TEST_HUB_CONFIG + "c.FederationOAuthenticator.provider_check_interval = 0\n")
    wrong = LocalHub(federation, centres.root / "hub-oidc-wrong", config_file=HUB_CONFIG,
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


def log_in(hub: LocalHub, user: str, password: str = PASSWORD) -> requests.Session:
    return oidc_log_in(hub.url, user, password)


def centre_options(spawn_page: str) -> dict[str, str]:
    """Each centre of the form: "" when it can be chosen, else the reason shown beside it."""
    return {m.group(1): unescape(m.group(2) or "") for m in re.finditer(
        r'<option value="([a-z]+)" (?:disabled title="([^"]*)")?', spawn_page)}


def refusal(api: HubAPI, user: str, centre: str, **options) -> str:
    """Why a spawn at ``centre`` is refused, as the user sees it: a 400, or (the test hub answers
    spawn requests at once) the progress page's last message; no server record is left."""
    r = api.spawn(user, {"centre": centre, "cores": 1, "memory": "512M", "walltime": "00:05:00", **options})
    message = r.json()["message"] if r.status_code >= 400 else api.progress(user)[-1].removeprefix("Spawn failed: ")
    wait_for(lambda: api.server(user) is None, 20, "the refused spawn to leave no record")
    return message


def job_environment(user: str, command: str) -> str:
    """The environment of ``user``'s process running ``command``, as one text."""
    out = subprocess.run(["pgrep", "-u", user, "-f", command], capture_output=True, text=True).stdout.split()
    assert out, f"no {command} of {user}"
    return "\n".join(Path(f"/proc/{pid}/environ").read_text(errors="replace").replace("\0", "\n") for pid in out)


def log_mark(hub: LocalHub) -> int:
    return len(hub.log_file.read_text(errors="replace"))


def no_traceback(hub: LocalHub, since: int = 0) -> None:
    """No traceback in the hub's log (since ``since``, a ``log_mark``)."""
    assert "Traceback" not in hub.log_file.read_text(errors="replace")[since:], hub.log_tail()


def test_a_user_logs_in_through_the_federation_provider_and_charges_her_second_project(hubs, browser, centres):
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

        # her projects at alpha, from the provider; she charges the second one
        page.select_option("select[name=centre]", "alpha")
        assert page.locator("#fedhub-project option").all_inner_texts() == [f"proj_{USER}", SECOND_PROJECT]
        page.select_option("#fedhub-project", SECOND_PROJECT)
        # beside the centre: its idle cores (the monitor's figures) and what is left in the project
        page.locator("#fedhub-start-estimate", has_text="Alpha: starts now").wait_for()  # sbatch --test-only
        facts = page.locator("#fedhub-centre-facts").inner_text()
        assert re.search(r"\d+ idle cores in cpu · \d+ jobs pending", facts) and f"core-h used, no limit in {SECOND_PROJECT}" in facts, \
            facts
        page.fill("#fedhub-memory", "512M")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"{hub.url}/user/{USER}/**", timeout=90_000)
        (job,) = live_jobs(centres, "alpha", USER)
        accounts = slurm(centres, "alpha", "sacct", "-n", "-X", "-P", "-j", job["job_id"], "--format=Account")
        assert accounts.split() == [SECOND_PROJECT]
        # the provider's tokens and the client secret reach neither the server's job nor a log
        secrets_seen = HubAPI(hub).get(f"/users/{USER}").json()["auth_state"]
        secret_values = [secrets_seen["access_token"], secrets_seen["refresh_token"], hub.oidc.client_secret]
        server_env = job_environment(USER, "jupyterhub-singleuser")
        script = slurm(centres, "alpha", "scontrol", "write", "batch_script", job["job_id"], "-")
        logs = hub.log_file.read_text() + hub.oidc.log_file.read_text()
        for value in secret_values:
            assert value not in server_env and value not in script and value not in logs
        # the lab's "Python 3 at Alpha" kernels charge what the server charges
        kernel_centres = json.loads(re.search(r"^FEDHUB_KERNEL_CENTRES=(.*)$", server_env, re.M).group(1))
        assert {c["id"]: c["options"].get("project") for c in kernel_centres}["alpha"] == SECOND_PROJECT
        kernel_at_gamma_charging_the_second_project(hub, page, centres)
        HubAPI(hub).stop(USER)
        # the quota service shows each of her projects at alpha separately, the default first
        report = requests.get(f"{hub.url}/services/fedhub-quota/api/quota/{USER}?fresh=1", timeout=30,
                              headers={"Authorization": f"token {hub.api_token}"}).json()
        alpha = [(e["project"], e["charge_account"]) for e in report["centres"] if e["centre"] == "alpha"]
        assert alpha == [(f"proj_{USER}", f"proj_{USER}"), (SECOND_PROJECT, SECOND_PROJECT)], report
        page.goto(f"{hub.url}/hub/spawn")
        page.select_option("select[name=centre]", "alpha")
        assert page.locator("#fedhub-project").input_value() == SECOND_PROJECT  # remembered

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


def kernel_at_gamma_charging_the_second_project(hub: LocalHub, page, centres) -> None:
    """From her lab at alpha: the kernel dialog offers her projects at each centre (at alpha the
    server's own first; at gamma Slurm's associations of her login there); the kernel's job at
    gamma charges the one she picks."""
    token = HubAPI(hub).post(f"/users/{USER}/tokens", json={"note": "projects test"}).json()["token"]
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": "import os\nprint('at', os.environ.get('SLURM_CLUSTER_NAME'))"}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    r = requests.put(f"{hub.url}/user/{USER}/api/contents/projects.ipynb", json={"type": "notebook", "content": notebook},
                     headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    page.goto(f"{hub.url}/user/{USER}/lab/tree/projects.ipynb")
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
    run_lab_command(page, "Kernel at another centre")
    dialog = page.locator(".jp-Dialog")
    project = dialog.locator("select[name=project]")
    dialog.locator("select[name=centre]").select_option("alpha")
    assert project.locator("option").all_inner_texts() == [f"proj_{USER}", SECOND_PROJECT]
    assert project.input_value() == SECOND_PROJECT  # what her server charges
    dialog.locator("select[name=centre]").select_option("gamma")
    at_gamma = project.locator("option").all_inner_texts()
    assert SECOND_PROJECT in at_gamma and len(at_gamma) == 2, at_gamma
    project.select_option(SECOND_PROJECT)
    dialog.get_by_role("button", name="Start kernel").click()
    page.locator("#fedhub-kernel-centre", has_text="Kernel at Gamma").wait_for(timeout=60_000)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=90_000)
    (job,) = live_jobs(centres, "gamma", USER)
    accounts = slurm(centres, "gamma", "sacct", "-n", "-X", "-P", "-j", job["job_id"], "--format=Account")
    assert accounts.split() == [SECOND_PROJECT]
    requests.delete(f"{hub.url}/user/{USER}/api/contents/projects.ipynb", headers={"Authorization": f"token {token}"},
                    timeout=30)


def test_logins_at_centres_come_from_the_claim_and_hostile_claims_are_refused(hubs, centres):
    hub, _ = hubs
    api = HubAPI(hub)
    mark = log_mark(hub)
    # gamma takes logins only from the claim: alice has one, bob none
    page = log_in(hub, USER).get(f"{hub.url}/hub/spawn", timeout=30).text
    mine = centre_options(page)
    assert mine["gamma"] == "" and mine["alpha"] == "", mine
    # her projects at gamma are her login's Slurm associations there
    form_data = json.loads(unescape(re.search(r'id="fedhub-centres">(.*?)</script>', page, re.S).group(1)))
    assert form_data["gamma"]["projects"] == [f"proj_{USER}", SECOND_PROJECT], form_data["gamma"]
    others = centre_options(log_in(hub, OTHER).get(f"{hub.url}/hub/spawn", timeout=30).text)
    assert others["gamma"] == "the federation's records give you no login there", others
    assert "you have no usable login at Gamma" in refusal(api, OTHER, "gamma")
    # hostile claims: root, and the login the template gives another user
    hostile = centre_options(log_in(hub, THIRD).get(f"{hub.url}/hub/spawn", timeout=30).text)
    assert hostile["gamma"] == "FedHub never acts as root", hostile
    assert hostile["alpha"] == "that login belongs to another user", hostile
    assert "that login belongs to another user" in refusal(api, THIRD, "alpha")
    # issue 21, finding 2: at beta (ssh) a claimed system account is refused once the hub has
    # read its uid at the login node; nothing runs as it, and the form says why from then on
    system_uid = int(subprocess.run(["id", "-u", SYSTEM_LOGIN], capture_output=True, text=True).stdout)
    why = f"that is a system account at the centre (uid {system_uid} is below 1000)"
    assert why in refusal(api, THIRD, "beta")
    assert live_jobs(centres, "beta", SYSTEM_LOGIN) == []
    assert centre_options(log_in(hub, THIRD).get(f"{hub.url}/hub/spawn", timeout=30).text)["beta"] == why
    # a hostile project is never offered nor charged
    assert others["alpha"] == "you have no project to charge there", others
    assert refusal(api, OTHER, "alpha", project="x; rm").startswith(
        "Invalid project: you have no project to charge at Alpha"), api.progress(OTHER)
    r = api.spawn(USER, {"centre": "alpha", "project": "proj_fhtest3"})
    assert "'proj_fhtest3' is not one of your projects at Alpha; choose one of: proj_fhtest1, proj_fhtest1_ml" \
        in (r.json()["message"] if r.status_code == 400 else api.progress(USER)[-1])
    wait_for(lambda: api.server(USER) is None, 20, "the refused spawn to leave no record")
    assert live_jobs(centres, "alpha", OTHER) == [] and live_jobs(centres, "gamma", "root") == []

    # the form's start estimate: validated like a spawn, for the user (or an admin) only
    r = api.get(f"/fedhub/users/{USER}/start-estimate?centre=alpha&cores=99")
    assert r.status_code == 400 and r.json()["field"] == "cores", r.text
    r = api.get(f"/fedhub/users/{USER}/start-estimate?centre=gamma&cores=1&memory=512M")
    assert r.status_code == 200 and r.json()["text"] == "starts now", r.text
    other = log_in(hub, OTHER)
    assert other.get(f"{hub.url}/hub/api/fedhub/users/{USER}/start-estimate?centre=alpha", timeout=30,
                     headers={"X-XSRFToken": other.cookies.get("_xsrf", "")}).status_code == 404

    # the claimed login is the one the job runs as
    r = api.spawn(USER, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:05:00"})
    assert r.status_code in (201, 202), r.text
    try:
        api.wait_ready(USER, 90)
        (job,) = live_jobs(centres, "gamma", USER)
        assert job["state"] == "RUNNING"
    finally:
        api.stop(USER)
    wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the server's job to end")
    log = hub.log_file.read_text()[mark:]
    assert "does not exist in the auth_model" not in log  # no groups is no error
    # each refusal is one line naming the user and the field, for the operator; no traceback
    assert f"[{OTHER}] rejected user options: project: you have no project to charge at Alpha" in log
    no_traceback(hub, mark)


def test_a_spawn_after_the_access_token_expired_refreshes_it_with_the_refresh_token(hubs):
    hub, _ = hubs
    api = HubAPI(hub)
    session = log_in(hub, OTHER)
    before = api.get(f"/users/{OTHER}").json()["auth_state"]
    time.sleep(ACCESS_TOKEN_SECONDS + 4)  # and the provider's clock tolerance (2 s)
    r = session.post(f"{hub.url}/hub/api/users/{OTHER}/server", timeout=60, json={"centre": "gamma"},
                     headers={"X-XSRFToken": session.cookies.get("_xsrf", "")})
    assert r.status_code in (201, 202, 400), r.text  # refused afterwards (no login at gamma): no matter
    wait_for(lambda: api.server(OTHER) is None, 20, "the refused spawn to leave no record")
    after = api.get(f"/users/{OTHER}").json()["auth_state"]
    assert after["access_token"] != before["access_token"]  # refreshed before the spawn
    assert after["oauth_user"]["preferred_username"] == OTHER
    assert f"Refreshing oauth access token for {OTHER}" in hub.log_file.read_text()


def test_a_spawn_for_a_user_whose_login_ended_names_the_user_and_what_to_do(hubs, provider, centres):
    """An admin (or a teacher) starts a server for a user whose refresh token was revoked at the
    provider: JupyterHub keeps the stale login for such requests; FedHub starts nothing and says why."""
    hub, _ = hubs
    api = HubAPI(hub)
    log_in(hub, USER)
    own_token = api.post(f"/users/{USER}/tokens", json={"note": "a script of the user's"}).json()["token"]
    provider.revoke(api.get(f"/users/{USER}").json()["auth_state"]["refresh_token"])  # and its access token
    mark = log_mark(hub)
    options = {"project": SECOND_PROJECT}
    assert refusal(api, USER, "alpha", **options) == (
        f"{USER}'s login with the federation has ended (it expired or was revoked), so FedHub cannot confirm "
        f"{USER}'s logins and projects at the centres and starts nothing for them. {USER} must log in to this hub "
        "once; then their server can be started, by them or on their behalf.")
    assert refusal(HubAPI(hub, own_token), USER, "alpha", **options).startswith(
        "Your login with the federation has ended, so FedHub cannot confirm your logins and projects")
    assert live_jobs(centres, "alpha", USER) == []
    log = hub.log_file.read_text()[mark:]
    assert f"Not starting {USER}'s server for" in log and f"{USER} must log in again" in log
    no_traceback(hub, mark)
    # once the user has logged in again, the same request starts the server
    log_in(hub, USER)
    r = api.spawn(USER, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:05:00", **options})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(USER, 90)
    api.stop(USER)


def test_a_user_who_renamed_their_profile_after_another_logs_in_as_themselves(hubs):
    """Issue 21, finding 2: the provider lets a person edit their preferred_username and the
    impostor set it to USER's name. The hub names users by ``sub``, which no user can change, so
    the impostor is their own hub user and reaches none of USER's servers or groups."""
    hub, _ = hubs
    session = log_in(hub, IMPOSTOR)
    me = session.get(f"{hub.url}/hub/api/user", timeout=30).json()
    assert me["name"] == IMPOSTOR, me
    assert session.get(f"{hub.url}/hub/api/users/{USER}", timeout=30).status_code in (403, 404)


def test_a_provider_group_makes_students_only_of_a_class_that_follows_the_provider(hubs):
    """Issue 21, finding 2: the provider names USER in the group climate-course. While the class
    climate-course lists its own students, that claim does not make USER one of them (and the
    class's listed student stays); once an admin says the class follows the provider's groups,
    USER's next login makes them a student."""
    hub, _ = hubs
    api = HubAPI(hub)
    body = {"title": "Climate", "teachers": [THIRD], "students": [OTHER], "centres": [{"centre": "alpha"}],
            "resources": {"cores": 1, "memory": "512M", "walltime": "00:30:00"}}
    try:
        r = api.session.put(api.url("/fedhub/classes/climate-course"), json=body, timeout=30)
        assert r.status_code in (200, 201), r.text
        log_in(hub, USER)
        assert api.get("/groups/climate-course").json()["users"] == [OTHER]
        assert "climate-course" not in api.get(f"/users/{USER}").json()["groups"]
        assert f"{USER}'s provider groups name the class(es) climate-course, which list their students: not joined" \
            in hub.log_tail(200)
        follows = {k: v for k, v in body.items() if k != "students"}
        r = api.session.put(api.url("/fedhub/classes/climate-course"), json={**follows, "provider_groups": True},
                            timeout=30)
        assert r.status_code == 200, r.text
        log_in(hub, USER)
        assert USER in api.get("/groups/climate-course").json()["users"]
    finally:
        api.delete("/fedhub/classes/climate-course")
        api.delete("/groups/climate-course")


def test_a_forged_or_replayed_callback_says_log_in_again(hubs):
    hub, _ = hubs
    mark = log_mark(hub)
    r = requests.get(f"{hub.url}/hub/oauth_callback?code=forged&state=forged", timeout=30)
    assert r.status_code == 400
    assert error_text(r.text) == ("400 : This login is not valid any more (it expired, or was not started here). "
                                  "Log in again.")
    no_traceback(hub, mark)


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
    mark = log_mark(hub)
    provider.stop()
    r = requests.get(f"{hub.url}/hub/oauth_login", timeout=30, allow_redirects=False)
    assert r.status_code == 503
    assert error_text(r.text) == (f"503 : The federation's login (127.0.0.1:{provider.port}) is not answering, so "
                                  "nobody can log in right now. Try again in a few minutes.")
    assert "The federation's login provider does not answer at" in hub.log_file.read_text()
    no_traceback(hub, mark)


pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make deps)")

