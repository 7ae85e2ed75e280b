"""Continue at another centre (issue 24): a running server's session moves on to a new job at
another centre, with its kernels' variables, the documents' sessions and the files they need;
the old job ends; the user's URL stays the same. A continue that fails leaves the old session
running and nothing at the target. Real Slurm at alpha and gamma, the real hub and proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from helpers.lab import LAB_USER, output, put_notebook, run_cell
from helpers.moves import Server
from helpers.testbed import TEST_USERS, HubAPI, live_jobs, slurm, wait_for

USER, OTHER = TEST_USERS[2], TEST_USERS[0]
NOTE = "notes/continue-notes.txt"


def continue_server(hub, user: str, token: str, body: dict, server: str = "") -> requests.Response:
    path = f"servers/{server}" if server else "server"
    return requests.post(f"{hub.url}/hub/api/fedhub/users/{user}/{path}/continue", json=body,
                         headers={"Authorization": f"token {token}"}, timeout=30)


def follow(hub, token: str, started: dict, timeout: float = 150) -> dict:
    def finished():
        r = requests.get(started["url"].replace("/hub/", f"{hub.url}/hub/", 1) if started["url"].startswith("/")
                         else started["url"], headers={"Authorization": f"token {token}"}, timeout=30)
        assert r.status_code == 200, r.text
        c = r.json()
        return c if c["status"] in ("done", "failed", "cancelled") else None
    return wait_for(finished, timeout, f"continuation {started['id']} to finish", 0.5)


@pytest.fixture
def session(hub, centres):
    """USER's server at alpha with a kernel that holds a notebook's variables, its document's
    session, and a file beside the notebook."""
    api = HubAPI(hub)
    r = api.spawn(USER, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:30:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(USER, 90)
    token = api.post(f"/users/{USER}/tokens", json={"note": "continue tests"}).json()["token"]
    server = Server(hub, USER, token)
    r = server.call("PUT", "api/contents/notes", json={"type": "directory"})
    assert r.status_code in (200, 201), r.text
    r = server.call("PUT", f"api/contents/{NOTE}", json={"type": "file", "format": "text",
                                                          "content": "written at alpha\n"})
    assert r.status_code in (200, 201), r.text
    session = server.call("POST", "api/sessions", json={"path": "notes/carry.ipynb", "name": "carry.ipynb",
                                                        "type": "notebook", "kernel": {"name": "python3"}}).json()
    kernel = session["kernel"]["id"]
    server.run(kernel, "a = [1, 2, {'x': 3}]\nb = a\ncounter = 0")
    server.run(kernel, "counter += 1")
    yield api, server, token, kernel
    api.stop(USER)


def test_a_session_continues_at_another_centre_with_its_variables_and_files(hub, centres, session):
    api, server, token, kernel = session
    (old_job,) = live_jobs(centres, "alpha", USER)
    count = server.run(kernel, "pass")["execution_count"]

    r = continue_server(hub, USER, token, {"centre": "gamma"})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "queued" and started["centre"] == "gamma" and started["source_centre"] == "alpha"
    done = follow(hub, token, started)
    assert done["status"] == "done", done
    phases = [p["phase"] for p in done["phases"]]
    assert phases[0] == "queued" and phases[-1] == "done", phases
    assert {"copying", "moving", "switching"} <= set(phases), phases
    assert done["centre_name"] == "Gamma" and done["server_url"] == f"/user/{USER}/"
    (moved,) = done["kernels"]
    assert moved["id"] == kernel and moved["restored"] == moved["variables"] == 3 and moved["unmovable"] == []

    # the same URL now reaches a server at gamma; alpha's job ended, one job runs at gamma
    wait_for(lambda: not live_jobs(centres, "alpha", USER), 30, "the old job at alpha to end")
    (new_job,) = live_jobs(centres, "gamma", USER)
    assert new_job["job_id"] == done["job_id"] != old_job["job_id"]
    where = requests.get(f"{hub.url}/hub/api/fedhub/users/{USER}/servers",
                         headers={"Authorization": f"token {token}"}, timeout=30).json()["servers"]
    assert [(s["centre"], s["job_id"]) for s in where] == [("gamma", new_job["job_id"])]

    # the notebook's session uses the restored kernel, whose variables and count came along
    (restored,) = server.call("GET", "api/sessions").json()
    assert restored["path"] == "notes/carry.ipynb" and restored["kernel"]["id"] == moved["new_id"]
    check = server.run(moved["new_id"], "print(b is a, a, counter)")
    assert check["stdout"].strip() == "True [1, 2, {'x': 3}] 1"
    assert check["execution_count"] == count + 1
    assert server.call("GET", f"api/contents/{NOTE}").json()["content"] == "written at alpha\n"
    # alpha's workspace, as it was at the switch, is recorded (the next start anywhere has it)
    listed = wait_for(lambda: {f["path"]: f for f in requests.get(
        f"{hub.url}/hub/api/fedhub/users/{USER}/workspace", headers={"Authorization": f"token {token}"},
        timeout=30).json()["files"]}.get(NOTE), 30, "alpha's workspace to be recorded at the switch")
    assert listed["at"].get("alpha") == "newest" and listed["size"] == len("written at alpha\n"), listed

    # the snapshot stays in the user's home, private
    folder = Path(f"/home/{USER}/.fedhub/sessions/{done['id']}")
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in folder.iterdir())


def test_a_continue_that_cannot_start_leaves_the_session_where_it_was(hub, centres, session):
    api, server, token, kernel = session
    (old_job,) = live_jobs(centres, "alpha", USER)
    r = continue_server(hub, USER, token, {"centre": "gamma"})
    assert r.status_code == 202, r.text
    started = r.json()
    # the target's job is cancelled while it waits (as a centre's operator might)
    job = wait_for(lambda: live_jobs(centres, "gamma", USER), 30, "the successor's job at gamma")[0]
    slurm(centres, "gamma", "scancel", job["job_id"])
    failed = follow(hub, token, started)
    assert failed["status"] == "failed" and "ended before" in failed["reason"], failed
    assert "runs on where it was" in failed["message"]
    assert not live_jobs(centres, "gamma", USER)
    assert [j["job_id"] for j in live_jobs(centres, "alpha", USER)] == [old_job["job_id"]]
    assert server.run(kernel, "print(b is a, counter)")["stdout"].strip() == "True 1"


def test_a_continue_asks_for_what_it_needs_and_only_the_user_may(hub, centres, session):
    api, server, token, kernel = session
    theirs = api.post(f"/users/{OTHER}/tokens", json={"note": "continue tests"}).json()["token"]
    assert continue_server(hub, USER, theirs, {"centre": "gamma"}).status_code == 404
    r = continue_server(hub, USER, token, {})
    assert r.status_code == 400 and r.json()["field"] == "centre", r.text
    r = continue_server(hub, USER, token, {"centre": "atlantis"})
    assert r.status_code == 400 and r.json()["field"] == "centre" and "atlantis" in r.json()["message"], r.text
    r = continue_server(hub, USER, token, {"centre": "gamma", "cores": 999})
    assert r.status_code == 400 and r.json()["field"] == "cores", r.text
    r = continue_server(hub, OTHER, theirs, {"centre": "gamma"})
    assert r.status_code == 409 and r.json()["field"] == "server", r.text
    assert not live_jobs(centres, "gamma", USER) and not live_jobs(centres, "gamma", OTHER)


def test_the_lab_continues_at_another_centre_with_the_same_tab_and_variables(lab, centres):
    """In Chromium: a notebook with a kernel's state; the time-left item's "Continue at another
    centre…" to Gamma; the page reopens there with the same notebook tab, whose kernel still
    has its variables, and the status bar names Gamma."""
    api, token, page = lab
    put_notebook(api.hub, token, "continue.ipynb", "python3",
                 ["a = [1, 2]\nb = a\ncounter = 41", "counter += 1", "print(b is a, counter)"])
    page.goto(f"{api.hub.url}/user/{LAB_USER}/lab/tree/continue.ipynb")
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
    for index in range(3):
        run_cell(page, index)
    wait_for(lambda: "True 42" in output(page, 2).inner_text(), 60, "the notebook's state at alpha")
    (old_job,) = live_jobs(centres, "alpha", LAB_USER)

    item = page.locator("#fedhub-time-left")
    wait_for(lambda: item.inner_text().startswith("Alpha:"), 30, "the time-left item")
    item.click()
    page.select_option(".fedhub-continue-chooser select", "gamma")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.locator(".Toastify__toast", has_text="Continuing").or_(
        page.locator(".Toastify__toast", has_text="Starting your server at Gamma")).first.wait_for()

    # the page reopens at the same address, now served from gamma
    wait_for(lambda: page.locator("#fedhub-time-left").inner_text().startswith("Gamma:"), 180,
             "the lab to reopen at gamma", 1)
    assert not live_jobs(centres, "alpha", LAB_USER) or old_job["job_id"] not in \
        [j["job_id"] for j in live_jobs(centres, "alpha", LAB_USER)]
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    assert page.locator(".lm-TabBar-tab.lm-mod-current", has_text="continue.ipynb").count() == 1
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)
    run_cell(page, 1)
    run_cell(page, 2)
    wait_for(lambda: "True 43" in output(page, 2).inner_text(), 60, "the kernel's variables at gamma")
