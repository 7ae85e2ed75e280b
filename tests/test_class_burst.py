"""A class of 30 starts at once: the teacher's "start all" goes through the class service in
stages, backs off when the hub answers 429 (its concurrent_spawn_limit is 10 here), and every
student's server runs in the class's classroom partition at alpha; the dashboard's roster shows
each state as it changes, and the hub keeps answering. Then "stop all" leaves no job behind."""

from __future__ import annotations

import secrets
import statistics
import threading
import time

import pytest
import requests

from helpers.testbed import CLASSROOM, HUB_CONFIG, TEST_HUB_CONFIG, TEST_USERS, HubAPI, centre_entry, federation_variant, \
    live_jobs, slurm, wait_for
from fedhub_testbed.hub import LocalHub

TEACHER = TEST_USERS[2]
STUDENTS = [f"fhclass{i:02d}" for i in range(1, 31)]
COURSE = "course101"


@pytest.fixture(scope="module")
def burst_hub(centres):
    centres.add_users(STUDENTS)
    for centre in ("alpha", "gamma"):
        slurm(centres, centre, "sacctmgr", "-i", "add", "account", COURSE, f"cluster={centre}")
        slurm(centres, centre, "sacctmgr", "-i", "add", "user", ",".join(STUDENTS), f"account={COURSE}",
              f"cluster={centre}")

    def with_classroom(doc):
        centre_entry(doc, "alpha")["partitions"].append(
            {"name": CLASSROOM, "max_cores": 4, "max_memory": "8G", "max_walltime": "02:00:00", "charge_rate": 3.0})
        centre_entry(doc, "alpha").pop("hub_connect_url", None)  # the session hub's port
    federation = federation_variant(centres, "classroom.yaml", with_classroom)
    hub = LocalHub(federation, centres.root / "hub-burst", config_file=HUB_CONFIG, users=TEST_USERS + STUDENTS,
                   password="fedhub-test", api_token=secrets.token_hex(24),
                   # a spawn waits its turn among 10 on two cores: a class's start_timeout, not a lone user's
                   extra_config=TEST_HUB_CONFIG + "c.JupyterHub.concurrent_spawn_limit = 10\n"
                                                  "c.FederatedSpawner.start_timeout = 120\n"
                                                  "c.FederatedSpawner.class_failover_pending_timeout = 6\n")
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def class_in_session(hub, admin: HubAPI, name: str, students: list[str], centres: list[dict]) -> tuple[str, dict]:
    """A class taught by TEACHER, in session now (1 core, 256M each): its URL at the class service
    and the teacher's token header."""
    now = time.time()
    r = admin.session.put(admin.url(f"/fedhub/classes/{name}"), timeout=30, json={
        "title": name.title(), "teachers": [TEACHER], "students": students, "centres": centres,
        "resources": {"cores": 1, "memory": "256M", "walltime": "00:30:00"},
        "sessions": [{"start": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now - 300)),
                      "end": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now + 3600))}]})
    assert r.status_code == 201, r.text
    token = admin.post(f"/users/{TEACHER}/tokens", json={"note": name}).json()["token"]
    return f"{hub.url}/services/fedhub-classes/api/classes/{name}", {"Authorization": f"token {token}"}


def test_thirty_students_start_at_once_in_stages_and_all_run(burst_hub, centres):
    hub = burst_hub
    admin = HubAPI(hub)
    service, auth = class_in_session(hub, admin, "burst-101", STUDENTS,
                                     [{"centre": "alpha", "partition": CLASSROOM, "project": COURSE}])

    # the hub's own API, asked throughout the burst as a user's browser would
    latencies, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            t = time.perf_counter()
            requests.get(f"{hub.url}/hub/api/users/{TEACHER}", headers=auth, timeout=30)
            latencies.append(time.perf_counter() - t)
            time.sleep(0.2)
    prober = threading.Thread(target=probe)
    prober.start()
    seen_states: set[str] = set()
    try:
        r = requests.post(f"{service}/start", headers=auth, timeout=60)
        assert r.status_code == 202 and sorted(r.json()["students"]) == STUDENTS, r.text

        def all_running():
            roster = requests.get(service, headers=auth, timeout=30).json()
            seen_states.update(s["state"] for s in roster["students"])
            failed = [(s["name"], s["detail"]) for s in roster["students"] if s["state"] == "failed"]
            assert not failed, failed
            return all(s["state"] == "running" for s in roster["students"]) and roster
        roster = wait_for(all_running, 240, "all 30 students' servers to run", 1)
    finally:
        stop.set()
        prober.join()
    action = roster["action"]
    assert action["done"] and action["counts"] == {"started": 30}, action
    assert action["retries_429"] > 0, action  # the hub's limit was met, and the service backed off
    assert {s["centre"] for s in roster["students"]} == {"alpha"}
    assert "running" in seen_states and seen_states & {"queued", "pending", "stopped"}, seen_states
    jobs = [j for j in live_jobs(centres, "alpha") if j["user"] in STUDENTS]
    assert len(jobs) == 30 and {j["partition"] for j in jobs} == {CLASSROOM}, jobs
    accounts = slurm(centres, "alpha", "squeue", "--noheader", "--format=%a", "--partition", CLASSROOM)
    assert set(accounts.split()) == {COURSE}
    assert max(latencies) < 5 and statistics.median(latencies) < 1, (statistics.median(latencies), max(latencies))

    r = requests.post(f"{service}/stop", headers=auth, timeout=60)
    assert r.status_code == 202, r.text
    wait_for(lambda: all(s["state"] == "stopped" for s in requests.get(service, headers=auth, timeout=30).json()["students"]),
             120, "every student's server to stop", 1)
    wait_for(lambda: not [j for j in live_jobs(centres, "alpha") if j["user"] in STUDENTS], 60, "every job to end")
    admin.delete("/fedhub/classes/burst-101")


def test_a_class_one_centre_cannot_hold_spreads_to_the_next(burst_hub, centres):
    """Six students, gamma first (cheaper) but with room for two: the class's starts are placed one
    after another, so later students' estimates see the earlier jobs; one that still waits at
    gamma moves to alpha after the class's short pending limit (6 s here). All six run, two at gamma."""
    hub = burst_hub
    admin = HubAPI(hub)
    students = STUDENTS[:6]
    service, auth = class_in_session(hub, admin, "spread-101", students, [
        {"centre": "gamma", "project": COURSE}, {"centre": "alpha", "partition": CLASSROOM, "project": COURSE}])
    try:
        assert requests.post(f"{service}/start", headers=auth, timeout=60).status_code == 202
        roster = wait_for(lambda: (r := requests.get(service, headers=auth, timeout=30).json()) and all(
            s["state"] == "running" for s in r["students"]) and r, 120, "the six servers to run", 1)
        where = sorted(s["centre"] for s in roster["students"])
        assert where == ["alpha"] * 4 + ["gamma"] * 2, where
        assert not [s for s in roster["students"] if s["state"] == "failed"]
    finally:
        requests.post(f"{service}/stop", headers=auth, timeout=60)
        wait_for(lambda: all(s["state"] == "stopped" for s in requests.get(service, headers=auth, timeout=30).json()["students"]),
                 60, "the six servers to stop", 1)
        admin.delete("/fedhub/classes/spread-101")
