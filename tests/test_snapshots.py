"""Nothing lost at the end (issue 24): a server near its walltime saves its session (every
kernel's variables, which notebook uses which kernel) in the user's home, the hub lists it, and
the next start, at another centre, brings it back."""

from __future__ import annotations

from pathlib import Path

import requests

from helpers.moves import Server
from helpers.testbed import TEST_USERS, HubAPI, live_jobs, slurm, wait_for

USER, OTHER = TEST_USERS[1], TEST_USERS[2]


def snapshots(hub, user: str, token: str) -> requests.Response:
    return requests.get(f"{hub.url}/hub/api/fedhub/users/{user}/snapshots",
                        headers={"Authorization": f"token {token}"}, timeout=30)


def test_a_session_saved_before_the_walltime_comes_back_at_another_centre(hub, centres):
    api = HubAPI(hub)
    r = api.spawn(USER, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:10:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(USER, 90)
    token = api.post(f"/users/{USER}/tokens", json={"note": "snapshot tests"}).json()["token"]
    server = Server(hub, USER, token)
    session = server.call("POST", "api/sessions", json={"path": "ends.ipynb", "name": "ends.ipynb",
                                                        "type": "notebook", "kernel": {"name": "python3"}}).json()
    kernel = session["kernel"]["id"]
    server.run(kernel, "import numpy as np\na = {'rows': np.arange(1000)}\nb = a\ncounter = 6")
    server.run(kernel, "counter += 1")
    before = snapshots(hub, USER, token).json()["snapshots"]
    (job,) = live_jobs(centres, "alpha", USER)

    # the job has four minutes left: under the five before its end when the hub saves the session
    slurm(centres, "alpha", "scontrol", "update", f"JobId={job['job_id']}", "TimeLimit=4")
    saved = wait_for(lambda: (s := snapshots(hub, USER, token).json()["snapshots"]) and s != before and s[0], 30,
                     "the session to be saved before the end", 1)
    assert saved["reason"] == "walltime" and saved["centre"] == "alpha" and saved["centre_name"] == "Alpha"
    assert saved["kernels"] == 1 and saved["notebooks"] == 1 and saved["variables"] == 3  # a b counter (np is imported again)
    folder = Path(f"/home/{USER}/.fedhub/sessions/{saved['id']}")
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in folder.iterdir())

    # the job ends (here by scancel, so the test need not wait four minutes for Slurm's limit; the
    # hub sees an ended job the same way whatever ended it)
    slurm(centres, "alpha", "scancel", job["job_id"])
    wait_for(lambda: api.server(USER) is None, 60, "the hub to see the server end with its job")

    # another user cannot name it; a made-up id is refused by name; nothing starts for either
    theirs = api.post(f"/users/{OTHER}/tokens", json={"note": "snapshot tests"}).json()["token"]
    assert snapshots(hub, USER, theirs).status_code == 404
    r = requests.post(f"{hub.url}/hub/api/users/{OTHER}/server", headers={"Authorization": f"token {theirs}"},
                      json={"centre": "gamma", "restore": saved["id"]}, timeout=30)
    assert r.status_code == 400 and "restore" in r.json()["message"], r.text
    assert not live_jobs(centres, "gamma", OTHER)

    # the next start, at gamma, restores it: the notebook's session and the kernel's variables
    r = api.spawn(USER, {"centre": "gamma", "cores": 1, "memory": "1G", "walltime": "00:20:00",
                         "restore": saved["id"]})
    assert r.status_code in (201, 202), r.text
    messages = api.progress(USER, timeout=120)
    assert any(m.startswith("Restored the session of") and "at Alpha (1 kernel, 1 notebook)" in m
               for m in messages), messages
    api.wait_ready(USER, 30)
    (restored,) = server.call("GET", "api/sessions").json()
    assert restored["path"] == "ends.ipynb"
    check = server.run(restored["kernel"]["id"], "print(b is a, int(a['rows'].sum()), counter)")
    assert check["stdout"].strip() == "True 499500 7"
    assert snapshots(hub, USER, token).json()["snapshots"][0].get("restored")
    api.stop(USER)
