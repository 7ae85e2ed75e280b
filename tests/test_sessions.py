"""A session's end (issue 24): the hub says where each of a user's servers runs and how long its
job has left, as Slurm has it at the centre; an operator's change to the job's limit shows at
once; only the user (and admins) may ask. The lab counts it down and warns before the end."""

from __future__ import annotations

import re
from datetime import datetime

import requests

from helpers.lab import LAB_USER, log_in
from helpers.testbed import TEST_USERS, HubAPI, blocker, live_jobs, slurm, wait_for

U1, U2 = TEST_USERS[0], TEST_USERS[1]


def servers(hub, user: str, token: str) -> requests.Response:
    return requests.get(f"{hub.url}/hub/api/fedhub/users/{user}/servers",
                        headers={"Authorization": f"token {token}"}, timeout=30)


def test_the_hub_says_how_long_each_server_has_left_as_slurm_has_it(api, hub, centres):
    r = api.spawn(U1, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(U1)
    mine = api.post(f"/users/{U1}/tokens", json={"note": "time left"}).json()["token"]
    (job,) = live_jobs(centres, "alpha", U1)

    (server,) = servers(hub, U1, mine).json()["servers"]
    assert {k: server[k] for k in ("name", "centre", "centre_name", "job_id", "state")} == {
        "name": "", "centre": "alpha", "centre_name": "Alpha", "job_id": job["job_id"], "state": "RUNNING"}
    slurm_end = slurm(centres, "alpha", "squeue", "-h", "-j", job["job_id"], "-o", "%e")
    assert datetime.fromisoformat(server["ends"]).replace(tzinfo=None) == datetime.fromisoformat(slurm_end)
    assert 20 * 60 - 90 < server["seconds_left"] <= 20 * 60

    # the centre shortens the job by ten minutes: the hub's next look at Slurm says so
    slurm(centres, "alpha", "scontrol", "update", f"JobId={job['job_id']}", "TimeLimit=-10")
    shortened = wait_for(lambda: (s := servers(hub, U1, mine).json()["servers"][0])["seconds_left"] <= 10 * 60 and s,
                         20, "the shortened limit to show", 1)
    assert 10 * 60 - 90 < shortened["seconds_left"]

    # another user sees nothing of it; an admin does
    theirs = api.post(f"/users/{U2}/tokens", json={"note": "time left"}).json()["token"]
    assert servers(hub, U1, theirs).status_code == 404
    assert servers(hub, "nobody-at-all", mine).status_code == 404
    assert [s["job_id"] for s in HubAPI(hub).get(f"/fedhub/users/{U1}/servers").json()["servers"]] == [job["job_id"]]

    api.stop(U1)
    assert servers(hub, U1, mine).json() == {"servers": []}


def test_the_lab_counts_down_and_warns_before_the_end(lab, centres):
    """In Chromium: the status bar names the centre and the time left; when the centre shortens
    the job to under 15 minutes, the lab (on its next read) says so and warns once."""
    api, token, page = lab
    item = page.locator("#fedhub-time-left")
    wait_for(lambda: item.inner_text().strip() or None, 30, "the time-left item to show")
    assert re.fullmatch(r"Alpha: (29|30) min left", item.inner_text().strip()), item.inner_text()
    assert page.locator(".Toastify__toast", has_text="ends in").count() == 0

    (job,) = live_jobs(centres, "alpha", LAB_USER)
    slurm(centres, "alpha", "scontrol", "update", f"JobId={job['job_id']}", "TimeLimit=-17")
    wait_for(lambda: api.get(f"/fedhub/users/{LAB_USER}/servers").json()["servers"][0]["seconds_left"] < 15 * 60,
             20, "the hub to read the shortened limit", 1)
    page.reload()
    wait_for(lambda: re.fullmatch(r"Alpha: 1[23] min left", item.inner_text().strip()), 30,
             "the shortened time to show")
    assert "fedhub-ending" in item.get_attribute("class")
    toast = page.locator(".Toastify__toast", has_text="Your server at Alpha ends in")
    toast.wait_for()
    assert re.search(r"ends in 1[23] min \(its job reaches its walltime\)", toast.inner_text()), toast.inner_text()
    assert toast.count() == 1
    assert toast.locator("button", has_text="Continue at another centre…").count() == 1  # the ways out
    # alpha lets the hub extend its jobs: the warning offers it, and Slurm's end moves
    toast.locator("button", has_text="Extend by 30 min").click()
    page.locator(".Toastify__toast", has_text="Extended by 30 min").wait_for()
    wait_for(lambda: re.fullmatch(r"Alpha: 4[23] min left", item.inner_text().strip()), 30,
             "the extended time to show")
    assert slurm(centres, "alpha", "squeue", "-h", "-j", job["job_id"], "-o", "%l") == "43:00"
    # once per job: a reload does not warn again at the same threshold (nor, now, at all: 43 min left)
    page.reload()
    wait_for(lambda: "min left" in item.inner_text(), 30, "the time-left item after the reload")
    page.wait_for_timeout(1500)  # the warning would come with the same read that filled the item
    assert page.locator(".Toastify__toast", has_text="Your server at Alpha ends in").count() == 0


def test_the_hub_home_page_shows_where_the_server_runs_and_its_time_left(api, hub, centres, browser):
    """JupyterHub's own home page, extended: a row per running server with its centre, its job,
    the time its job has left and its allocation left."""
    r = api.spawn(U2, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:45:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(U2)
    (job,) = live_jobs(centres, "gamma", U2)
    page = log_in(browser, hub, U2, "/hub/home")
    row = page.locator("#fedhub-sessions tbody tr")
    row.first.wait_for()
    cells = [c.inner_text() for c in row.first.locator("td").all()]
    assert cells[:3] == ["default", "Gamma", job["job_id"]], cells
    assert re.fullmatch(r"4[45] min left", cells[3]), cells
    # the allocation it is charged to: what is left of it, as the quota panel says it
    assert re.fullmatch(r"(\d+\.\d core-h left \(\d+% used\)|no limit) · \S+", cells[4]), cells
    assert page.locator("#stop").is_visible()  # JupyterHub's own page is all still there
    page.close()


def extend(hub, user: str, token: str, body: dict) -> requests.Response:
    return requests.post(f"{hub.url}/hub/api/fedhub/users/{user}/server/extend", json=body,
                         headers={"Authorization": f"token {token}"}, timeout=30)


def test_a_server_is_extended_where_its_centre_allows_and_only_as_far(api, hub, centres):
    """Alpha's federation entry lets the hub add up to an hour (in steps of 30 min) as its
    operator; gamma's does not. Slurm's own end time moves; the limit holds."""
    r = api.spawn(U1, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(U1)
    mine = api.post(f"/users/{U1}/tokens", json={"note": "extend"}).json()["token"]
    (job,) = live_jobs(centres, "alpha", U1)
    (server,) = servers(hub, U1, mine).json()["servers"]
    assert server["extendable_s"] == 3600 and server["extend_step_s"] == 1800

    theirs = api.post(f"/users/{U2}/tokens", json={"note": "extend"}).json()["token"]
    assert extend(hub, U1, theirs, {}).status_code == 404
    r = extend(hub, U1, mine, {})
    assert r.status_code == 200 and r.json()["extended_s"] == 1800 and r.json()["extendable_s"] == 1800, r.text
    assert slurm(centres, "alpha", "squeue", "-h", "-j", job["job_id"], "-o", "%l") == "50:00"
    assert 49 * 60 < r.json()["seconds_left"] <= 50 * 60
    r = extend(hub, U1, mine, {"minutes": 45})
    assert r.status_code == 409 and r.json()["field"] == "minutes" and "00:30:00 more" in r.json()["message"], r.text
    assert extend(hub, U1, mine, {"minutes": 30}).status_code == 200
    r = extend(hub, U1, mine, {"minutes": 30})
    assert r.status_code == 409 and "already extended by all" in r.json()["message"], r.text
    assert slurm(centres, "alpha", "squeue", "-h", "-j", job["job_id"], "-o", "%l") == "1:20:00"
    api.stop(U1)

    r = api.spawn(U1, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(U1)
    assert servers(hub, U1, mine).json()["servers"][0]["extendable_s"] == 0
    r = extend(hub, U1, mine, {})
    assert r.status_code == 409 and r.json()["field"] == "centre" and "continue at another centre" in r.json()["message"]
    api.stop(U1)


RECORD_NOTIFICATIONS = """
window.fedhubNotified = [];
window.Notification = class { constructor(title, options) { window.fedhubNotified.push({title, ...options}); }
                              static get permission() { return "granted"; } };
Object.defineProperty(document, "hidden", {get: () => true});  // the tab is in the background
"""


def test_a_user_who_closed_the_progress_page_is_told_when_the_server_starts(api, hub, centres, browser):
    """The job waits in gamma's queue; the user leaves the progress page; on the hub's home page
    (open in a background tab) the browser's own notification says when it started."""
    held = blocker(centres, "gamma", 2, 5)
    context = browser.new_context()
    try:
        r = api.spawn(U2, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
        assert r.status_code in (201, 202), r.text
        progress = log_in(context, hub, U2, f"/hub/spawn-pending/{U2}")
        progress.locator("#fedhub-queue-note").wait_for()
        assert "You may close this page" in progress.locator("#fedhub-queue-note").inner_text()
        wait_for(lambda: '"PENDING"' in (progress.evaluate(f"localStorage.getItem('fedhub-server-state:{U2}:')")
                                         or ""), 20, "the page to see the job wait")
        progress.close()

        home = context.new_page()
        home.add_init_script(RECORD_NOTIFICATIONS)
        home.goto(f"{hub.url}/hub/home")
        home.locator("#fedhub-sessions").wait_for(state="attached")
        slurm(centres, "gamma", "scancel", held)
        wait_for(lambda: home.evaluate("document.body.dataset.fedhubServerStarted") == "default", 40,
                 "the home page to see the server start", 1)
        (told,) = home.evaluate("window.fedhubNotified")
        assert told["title"] == "FedHub: your server is running at Gamma", told
        (job,) = live_jobs(centres, "gamma", U2)
        assert told["body"].startswith(f"Job {job['job_id']} started.")
        api.wait_ready(U2)
    finally:
        context.close()
        slurm(centres, "gamma", "scancel", held)
        api.stop(U2)
