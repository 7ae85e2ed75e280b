"""Spawning as a new user or an attacker tries it, through the real hub and real Slurm: logins
that must not be used, a hub killed while a job waits, the hub's address as a centre's nodes
see it, and where job output goes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from helpers.testbed import TEST_USERS, live_jobs, slurm, wait_for

U1, U2, U3 = TEST_USERS


@pytest.mark.parametrize("hub_user,centre,login,reason", [
    ("zed1", "alpha", "zed1", "there is no such account; ask the centre for one"),
    ("root", "alpha", "root", "FedHub never acts as root"),
    ("daemon", "alpha", "daemon", "that is a system account (uid 1 is outside"),
    ("fedhub", "beta", "fedhub", "that is the hub's own query login there"),
])
def test_a_hub_user_without_a_usable_login_gets_a_400_naming_centre_and_login(api, centres, hub_user, centre,
                                                                             login, reason):
    """Defects B1 (a hub user with no Unix account got a 500) and B2 (the template mapped hub
    users to root, system accounts and the query user)."""
    api.post(f"/users/{hub_user}")
    try:
        r = api.spawn(hub_user, {"centre": centre})
        assert r.status_code == 400, r.text
        name = {"alpha": "Alpha", "beta": "Beta", "gamma": "Gamma"}[centre]
        assert r.json()["message"].startswith(
            f"Invalid centre: you have no usable login at {name} (looked for login {login!r}): {reason}")
        assert api.server(hub_user) is None
        assert live_jobs(centres, centre, login) == []
    finally:
        api.delete(f"/users/{hub_user}")


def test_any_centre_skips_centres_without_a_login_for_the_user(api, centres):
    api.post("/users/zed1")
    try:
        r = api.spawn("zed1", {"centre": "auto", "walltime": "00:10:00"})
        assert r.status_code == 202, r.text
        messages = api.progress("zed1")
        decision = next(m for m in messages if "chosen" in m or "No centre" in m)
        assert "alpha: no login (there is no such account; ask the centre for one)." in decision
        # beta's and gamma's login nodes refuse zed1 (no such account there): said so, not "down"
        assert "beta: " in decision and "at 10.30.1.2 is not used: there is no such account" in decision, decision
        assert "gamma: login 'zed1' at 127.0.0.1 is not used: there is no such account" in decision, decision
        wait_for(lambda: api.server("zed1") is None, 30, "the refused spawn to leave no record")
    finally:
        api.delete("/users/zed1")


def test_jobs_reach_the_hub_at_the_centres_hub_connect_url(api, centres):
    """Defect B6: hub_connect_url was validated and never used; jobs got the hub's own API URL."""
    api.spawn(U1, {"centre": "alpha", "walltime": "00:10:00"})
    api.wait_ready(U1)  # the server reported its port through that URL
    pid = subprocess.run(["pgrep", "-u", U1, "-f", "jupyterhub-singleuser"], capture_output=True,
                         text=True).stdout.split()[0]
    env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    assert env["JUPYTERHUB_API_URL"] == f"https://localhost:{centres.hub_port}/hub/api"
    assert env["JUPYTERHUB_ACTIVITY_URL"].startswith(f"https://localhost:{centres.hub_port}/hub/api/users/{U1}/")
    # gamma names no hub_connect_url: its jobs get the hub's own (beta's reach it through its login node)
    api.spawn(U2, {"centre": "gamma", "walltime": "00:10:00"})
    api.wait_ready(U2)
    pid = subprocess.run(["pgrep", "-u", U2, "-f", "jupyterhub-singleuser"], capture_output=True,
                         text=True).stdout.split()[0]
    env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    assert env["JUPYTERHUB_API_URL"] == f"https://127.0.0.1:{centres.hub_port}/hub/api"


def test_job_output_goes_to_a_fedhub_directory_and_only_recent_logs_are_kept(api, centres):
    """Defect B11: every spawn left fedhub-<job>.log in the user's home, first in the file browser."""
    home = centres.centres["gamma"].home_of(U3)  # gamma's own home, as this machine sees it
    logs = home / ".fedhub" / "jobs"
    subprocess.run(["runuser", "-u", U3, "--", "mkdir", "-p", str(logs)], check=True)
    for earlier in logs.glob("fedhub-*.log"):  # from other tests' spawns: this test sets its own scene
        earlier.unlink()
    for i in range(12):  # old logs from earlier spawns, oldest first
        old = logs / f"fedhub-{90000 + i}.log"
        subprocess.run(["runuser", "-u", U3, "--", "touch", "-d", f"{20 - i} days ago", str(old)], check=True)
    api.spawn(U3, {"centre": "gamma", "walltime": "00:10:00"})
    api.wait_ready(U3)
    (job,) = live_jobs(centres, "gamma", U3)
    kept = sorted(p.name for p in logs.glob("fedhub-*.log"))
    assert f"fedhub-{job['job_id']}.log" in kept
    assert len(kept) == 10  # the newest ten: this job's and nine earlier ones
    assert "fedhub-90000.log" not in kept and "fedhub-90011.log" in kept
    assert list(home.glob("fedhub-*.log")) == []  # nothing new in the home itself


def test_a_job_whose_hub_was_killed_while_it_waited_is_swept(api, hub, centres):
    """Defect B4b: JupyterHub saves a server's state only once start() returns, so a hub killed
    while the job was pending lost the job id and the job ran for nobody. Every job carries the
    hub's name; after the restart the sweep cancels the ones no server knows."""
    blocker = slurm(centres, "gamma", "sbatch", "--parsable", "--cpus-per-task=2", "--time=10",
                    "--output=/dev/null", "--wrap", "sleep 600")
    try:
        api.spawn(U2, {"centre": "gamma", "cores": 2, "walltime": "00:10:00"})
        api.progress(U2, until=lambda e: "waiting for Resources" in e.get("message", ""))
        (pending,) = live_jobs(centres, "gamma", U2)
        hub.kill()
        hub.start()
        wait_for(lambda: live_jobs(centres, "gamma", U2) == [], 60, "the sweep to cancel the forgotten job", 1)
        assert api.server(U2) is None
        assert f"Sweep: cancelled job {pending['job_id']} at gamma (login {U2}, hub user {U2}" in hub.log_tail(400)
    finally:
        slurm(centres, "gamma", "scancel", blocker)
    time.sleep(0.5)
