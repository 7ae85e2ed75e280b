"""'Any centre': placement on real, loaded centres, failover, and down centres (real hub)."""

from __future__ import annotations

import re

import requests

from helpers.testbed import TEST_USERS, blocker, jobs_everywhere, live_jobs, slurm, wait_for

U1, U2, U3 = TEST_USERS
SMALL = {"centre": "auto", "cores": 1, "memory": "512M", "walltime": "00:10:00"}


def chosen_line(messages):
    return next(m for m in messages if m.startswith("Centre ") and " chosen " in m)


def test_auto_picks_the_centre_that_starts_soonest(api, hub, centres):
    blocker(centres, "alpha", 4, 10)
    blocker(centres, "gamma", 2, 20)  # gamma is the cheapest, but busy for 20 min
    r = api.spawn(U1, SMALL)
    assert r.status_code == 202, r.text
    messages = api.progress(U1)
    line = chosen_line(messages)
    assert line.startswith("Centre beta chosen (batch): starts now.")
    assert re.search(r"alpha: about (9|10) min wait\. gamma: about (19|20) min wait\. broken: about (19|20) min wait\.", line), line
    assert messages[-1].startswith("Server ready")
    (job,) = live_jobs(centres, "beta", U1)
    assert job["state"] == "RUNNING"
    assert api.server(U1)["state"]["centre"] == "beta"
    assert api.server(U1)["user_options"]["centre"] == "auto"
    metrics = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.api_token}"}, timeout=10).text
    assert re.search(r'fedhub_placement_decisions_total\{centre="beta"\} [1-9]', metrics)
    assert re.search(r'fedhub_scheduler_queries_total\{centre="alpha",command="sbatch"\} [1-9]', metrics)
    assert 'fedhub_placement_seconds_count' in metrics


def test_auto_moves_on_when_the_job_stays_pending(api, centres):
    """Gamma is cheapest and 'starts now' by Slurm's estimate, but its partition is down."""
    slurm(centres, "gamma", "scontrol", "update", "PartitionName=small", "State=DOWN")
    try:
        api.spawn(U2, SMALL)
        messages = api.progress(U2, timeout=90)
    finally:
        slurm(centres, "gamma", "scontrol", "update", "PartitionName=small", "State=UP")
    joined = "\n".join(messages)
    assert chosen_line(messages).startswith("Centre gamma chosen (small): starts now.")
    assert re.search(r"job \d+ still pending at Gamma after 1\d s \(PartitionDown\)\. Cancelled there; trying alpha", joined), joined
    assert messages[-1].startswith("Server ready"), messages
    everywhere = jobs_everywhere(centres, U2)
    assert len(everywhere["alpha"]) == 1 and everywhere["beta"] == everywhere["gamma"] == []


def test_auto_moves_on_when_the_centre_dies_mid_spawn(api, centres):
    gamma = centres.centres["gamma"]
    slurm(centres, "gamma", "scontrol", "update", "PartitionName=small", "State=DOWN")
    api.spawn(U3, SMALL)
    wait_for(lambda: live_jobs(centres, "gamma", U3), 20, "the job to be queued at gamma")
    gamma.stop_controller()
    try:
        messages = api.progress(U3, timeout=120)
        joined = "\n".join(messages)
        # the next centre is the one placement ranked second
        following = re.findall(r"(\w+): starts now", chosen_line(messages))[0]
        assert following in ("alpha", "beta"), chosen_line(messages)
        assert "Gamma stopped answering while job" in joined and f"trying {following}" in joined, joined
        assert messages[-1].startswith("Server ready"), messages
        assert len(live_jobs(centres, following, U3)) == 1
    finally:
        gamma.start_controller()
    # the scancel owed to gamma lands once it answers again: no orphan there
    wait_for(lambda: live_jobs(centres, "gamma", U3) == [], 40, "the owed scancel at gamma")
    slurm(centres, "gamma", "scontrol", "update", "PartitionName=small", "State=UP")
    everywhere = jobs_everywhere(centres, U3)
    assert {c: len(jobs) for c, jobs in everywhere.items()} == {c: int(c == following) for c in everywhere}
    assert api.server(U3)["state"]["centre"] == following


def _form(hub, user):
    s = requests.Session()
    s.get(f"{hub.url}/hub/login")
    s.post(f"{hub.url}/hub/login", data={"username": user, "password": "fedhub-test", "_xsrf": s.cookies["_xsrf"]})
    return lambda: s.get(f"{hub.url}/hub/spawn", timeout=30).text


def test_down_centre_is_skipped_and_used_again_when_back(api, hub, centres):
    gamma = centres.centres["gamma"]
    form = _form(hub, U1)
    assert '<option value="auto" selected>Any centre (starts soonest)</option>' in form()
    gamma.stop_controller()
    try:
        # the monitor marks it down after the grace; the form says so
        api.spawn(U2, {"centre": "alpha", "walltime": "00:10:00"})  # keeps the monitor looking
        wait_for(lambda: ">Gamma (down)</option>" in form(), 60, "the form to show gamma down", 1)
        api.spawn(U1, SMALL)
        messages = api.progress(U1, timeout=60)
        line = chosen_line(messages)
        assert line.startswith("Centre alpha chosen") and "gamma: down." in line, line
        assert messages[-1].startswith("Server ready")
        api.stop(U1)
    finally:
        gamma.start_controller()
    wait_for(lambda: ">Gamma (down)</option>" not in form(), 60, "gamma to be up again", 1)
    gamma.wait_ready()  # its node re-registers after the controller restarts
    api.spawn(U1, SMALL)
    messages = api.progress(U1, timeout=60)
    assert chosen_line(messages).startswith("Centre gamma chosen (small): starts now.")
    assert len(live_jobs(centres, "gamma", U1)) == 1
