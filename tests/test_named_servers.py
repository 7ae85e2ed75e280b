"""Several servers per user (issue 24): JupyterHub's named servers, each its own Slurm job at its
own centre, each with its time left, allocation, quota and kernels; a stop ends only its own job."""

from __future__ import annotations

import requests

from helpers.testbed import TEST_USERS, HubAPI, live_jobs, wait_for

USER = TEST_USERS[2]


def test_named_servers_at_two_centres_at_once_each_with_its_own_allocation_and_kernels(hub, centres):
    api = HubAPI(hub)
    for name, centre in (("here", "alpha"), ("there", "gamma")):
        r = api.post(f"/users/{USER}/servers/{name}", json={"centre": centre, "cores": 1, "memory": "1G",
                                                            "walltime": "00:10:00"})
        assert r.status_code in (201, 202), r.text

    def ready():
        servers = api.get(f"/users/{USER}").json()["servers"]
        return all(servers.get(n, {}).get("ready") for n in ("here", "there")) and servers
    wait_for(ready, 120, "both named servers to be ready", 1)
    assert len(live_jobs(centres, "alpha", USER)) == 1 and len(live_jobs(centres, "gamma", USER)) == 1

    # the home page's table: each server with its centre, time left and allocation
    token = api.post(f"/users/{USER}/tokens", json={"note": "named servers"}).json()["token"]
    mine = {"Authorization": f"token {token}"}
    listed = requests.get(f"{hub.url}/hub/api/fedhub/users/{USER}/servers", headers=mine, timeout=30).json()["servers"]
    by_name = {s["name"]: s for s in listed}
    assert (by_name["here"]["centre"], by_name["there"]["centre"]) == ("alpha", "gamma")
    assert all(0 < s["seconds_left"] <= 600 for s in listed)
    assert by_name["here"]["allocation"]["charge_account"] != by_name["there"]["allocation"]["charge_account"] \
        or by_name["here"]["centre"] != by_name["there"]["centre"]
    assert all(s["allocation"]["level"] in ("ok", "warn", "critical", "used-up") for s in listed)

    # each server's lab: its own centre marked in the quota panel's figures
    for name, centre in (("here", "alpha"), ("there", "gamma")):
        quota = requests.get(f"{hub.url}/user/{USER}/{name}/fedhub/api/quota", headers=mine, timeout=60).json()
        assert quota["available"] and quota["centre"] == centre, quota

    # a kernel at alpha started by the server at gamma belongs to that server, not the other
    r = requests.post(f"{hub.url}/user/{USER}/there/api/kernels", json={"name": "fedhub-alpha"}, headers=mine,
                      timeout=120)
    assert r.status_code == 201, r.text
    kernels = {name: requests.get(f"{hub.url}/hub/api/fedhub/users/{USER}/kernels", params={"server": name},
                                  headers=mine, timeout=30).json()["kernels"] for name in ("here", "there")}
    assert kernels["here"] == [] and [k["centre"] for k in kernels["there"]] == ["alpha"]
    assert len(live_jobs(centres, "alpha", USER)) == 2  # the server "here" and the kernel of "there"

    # a class starts the default server, never a named one (refused by name, nothing started)
    r = api.post(f"/users/{USER}/servers/lesson", json={"class": "any-class"})
    assert r.status_code == 400 and "a class starts your default server" in r.json()["message"], r.text
    assert "lesson" not in api.get(f"/users/{USER}").json()["servers"]

    # stopping one ends its own job (and its kernel's), not the other's
    assert api.delete(f"/users/{USER}/servers/there").status_code in (202, 204)
    wait_for(lambda: not live_jobs(centres, "gamma", USER) and len(live_jobs(centres, "alpha", USER)) == 1, 60,
             "the server at gamma and its kernel at alpha to end")
    assert api.get(f"/users/{USER}").json()["servers"]["here"]["ready"]
    assert api.delete(f"/users/{USER}/servers/here").status_code in (202, 204)
    wait_for(lambda: not live_jobs(centres, "alpha", USER), 60, "the server at alpha to end")
