"""Idle servers and kernels stop costing allocation, and culling loses nothing (issue 24): the
test federation culls servers in alpha's debug partition after 40 s idle, and their kernels
at other centres after 10 s; jupyterhub-idle-culler runs as the hub's service with FedHub's
arbiter."""

from __future__ import annotations

import requests

from helpers.lab import service_report
from helpers.moves import Server
from helpers.testbed import TEST_USERS, HubAPI, live_jobs, wait_for

USER = TEST_USERS[1]


def test_an_idle_server_saves_its_session_and_is_stopped_and_its_idle_kernel_elsewhere_ends_first(hub, centres):
    api = HubAPI(hub)
    before = service_report(hub, USER)["alpha"].get("culling")
    r = api.spawn(USER, {"centre": "alpha", "partition": "debug", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(USER, 90)
    token = api.post(f"/users/{USER}/tokens", json={"note": "culling tests"}).json()["token"]
    server = Server(hub, USER, token)
    session = server.call("POST", "api/sessions", json={"path": "idle.ipynb", "name": "idle.ipynb",
                                                        "type": "notebook", "kernel": {"name": "python3"}}).json()
    local = session["kernel"]["id"]
    server.run(local, "a = [1, 2]\nb = a\ncounter = 3")
    remote = server.start_kernel("fedhub-gamma")
    server.run(remote, "x = 1")
    assert len(live_jobs(centres, "gamma", USER)) == 1  # the kernel's own job

    # the kernel at gamma, idle past its 10 s, ends with its job; the one beside the server stays
    wait_for(lambda: remote not in server.kernels(), 60, "the idle kernel at gamma to be culled", 2)
    wait_for(lambda: not live_jobs(centres, "gamma", USER), 30, "the culled kernel's job at gamma to end")
    assert local in server.kernels()

    # the server, idle past its 40 s: its session saved, then stopped by the culler, its job gone
    wait_for(lambda: api.server(USER) is None, 120, "the culler to stop the idle server", 2)
    assert not live_jobs(centres, "alpha", USER)
    saved = requests.get(f"{hub.url}/hub/api/fedhub/users/{USER}/snapshots", timeout=30,
                         headers={"Authorization": f"token {token}"}).json()["snapshots"][0]
    assert (saved["reason"], saved["centre"], saved["kernels"], saved["notebooks"], saved["variables"]) == \
        ("idle", "alpha", 1, 1, 3)
    log = hub.log_file.read_text(errors="replace")
    assert "Culling server" in log and "culling job" in log and "saved the session of" in log

    # the quota panel's figure: the walltime left, returned (1 core, alpha's debug rate 1.0, ~18 min)
    culling = service_report(hub, USER)["alpha"]["culling"]
    assert culling["servers_culled"] == (before or {}).get("servers_culled", 0) + 1
    returned = culling["core_hours_returned"] - (before or {}).get("core_hours_returned", 0)
    assert 0.2 < returned <= 20 / 60, culling

