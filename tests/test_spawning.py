"""Spawning through a real JupyterHub onto real Slurm centres (local and ssh routes)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.testbed import TEST_USERS, live_jobs, slurm, squeue, wait_for
from fedhub.federation import load_federation
from fedhub.request import parse_user_options
from fedhub.units import format_memory_mb

U1, U2, U3 = TEST_USERS


@pytest.mark.parametrize("centre,partition", [("alpha", "cpu"), ("beta", "batch")])
def test_spawn_at_chosen_centre_runs_there_and_answers_through_proxy(api, centres, centre, partition):
    r = api.spawn(U1, {"centre": centre, "partition": partition, "cores": 2, "memory": "2G", "walltime": "01:00:00"})
    assert r.status_code in (201, 202), r.text
    server = api.wait_ready(U1)
    assert server["user_options"] == {"centre": centre, "partition": partition, "cores": 2,
                                      "memory": "2G", "walltime": "01:00:00"}
    # the job runs at that centre, as the user, with what was asked for
    (job,) = live_jobs(centres, centre, U1)
    assert (job["state"], job["cpus"], job["partition"], job["memory"], job["time_limit"]) == \
        ("RUNNING", "2", partition, "2G", "1:00:00")
    other = "gamma" if centre != "gamma" else "alpha"
    assert live_jobs(centres, other, U1) == []
    # the notebook server answers through the hub's proxy
    status = api.through_proxy(U1)
    assert status.status_code == 200 and "started" in status.json()
    # stop cancels the job
    api.stop(U1)
    wait_for(lambda: live_jobs(centres, centre, U1) == [], 20, "the job to be gone")


def test_the_operators_job_hook_shapes_the_job_slurm_runs(api, centres):
    """c.FederatedSpawner.modify_job_hook (the test hub sets one, tests/helpers/testbed.py) changes
    the job's environment and script before sbatch; alpha's accounting keeps both as Slurm ran them."""
    assert api.spawn(U2, {"centre": "alpha", "partition": "cpu", "cores": 1, "memory": "1G"}).status_code in (201, 202)
    api.wait_ready(U2)
    (job,) = live_jobs(centres, "alpha", U2)
    environment = wait_for(lambda: (lambda out: out if "JUPYTERHUB_USER=" in out else None)(slurm(
        centres, "alpha", "sacct", "-j", job["job_id"], "--env-vars", "--noheader")), 30,
        "alpha's accounting to store the job's environment (slurmdbd records it after the job starts)")
    script = slurm(centres, "alpha", "sacct", "-j", job["job_id"], "--batch-script", "--noheader")
    assert "JUPYTERHUB_SITE_NOTE=alpha-scratch" in environment, environment
    assert "set -euo pipefail\n# the site's job hook was here\n" in script, script
    api.stop(U2)


def test_progress_tells_the_user_what_slurm_says(api, centres):
    api.spawn(U2, {"centre": "alpha", "partition": "debug", "cores": 1, "memory": "512M", "walltime": "00:10:00"})
    messages = api.progress(U2)
    joined = "\n".join(messages)
    job_id = live_jobs(centres, "alpha", U2)[0]["job_id"]
    assert "Submitting to Alpha: partition debug, 1 core, 512M memory, 00:10:00 walltime" in joined
    assert f"Submitted to Alpha as job {job_id}" in joined
    assert f"Job {job_id} running at Alpha on node alpha-n1" in joined
    assert messages[-1].startswith("Server ready at /user/")


def test_pending_job_shows_reason_then_start_timeout_leaves_nothing(api, centres):
    """A full centre: the user sees Slurm's reason; when the hub gives up, the job is cancelled."""
    blocker = subprocess.run(
        ["sbatch", "--parsable", "--cpus-per-task=2", "--time=00:10:00", "--output=/dev/null", "--wrap", "sleep 600"],
        env={**os.environ, "SLURM_CONF": str(centres.centres["gamma"].conf)}, capture_output=True, text=True, check=True,
    ).stdout.strip()
    wait_for(lambda: any(j["job_id"] == blocker and j["state"] == "RUNNING" for j in squeue(centres, "gamma")),
             20, "the blocker job to run")
    r = api.spawn(U3, {"centre": "gamma", "cores": 2, "memory": "1G", "walltime": "00:30:00"})
    assert r.status_code == 202, r.text
    messages = api.progress(U3, until=lambda e: "waiting for Resources" in e.get("message", ""))
    assert any(m.startswith("Pending at Gamma as job") and "waiting for Resources" in m for m in messages), messages
    (job,) = live_jobs(centres, "gamma", U3)
    assert job["state"] == "PENDING"
    # start_timeout (25 s in the test hub) passes: the spawn fails, the job and the record go
    wait_for(lambda: api.server(U3) is None, 90, "the timed-out spawn to be cleaned up", 1)
    assert live_jobs(centres, "gamma", U3) == []
    assert [j["job_id"] for j in live_jobs(centres, "gamma")] == [blocker]


def test_job_that_dies_at_start_leaves_no_job_and_no_server(api, centres):
    r = api.spawn(U1, {"centre": "broken", "walltime": "00:10:00"})
    assert r.status_code == 202, r.text  # the test hub answers at once; the spawn goes on
    messages = api.progress(U1, timeout=60)
    wait_for(lambda: api.server(U1) is None, 60, "the failed spawn to be cleaned up")
    assert "ended before the notebook server started" in messages[-1], messages
    assert "/.fedhub/jobs/fedhub-" in messages[-1]  # where its output is, at the centre
    assert live_jobs(centres, "broken", U1) == []


@pytest.mark.parametrize("options,fragment", [
    ({"centre": "alpha", "partition": "gpu"}, "Invalid partition: Alpha has no partition 'gpu'; choose one of: cpu, debug"),
    ({"centre": "alpha", "cores": 64}, "Invalid cores: 64 is outside what partition 'cpu' at Alpha allows; choose 1-4"),
    ({"centre": "zeta"}, "Invalid centre: unknown centre 'zeta'; choose one of: alpha, beta, gamma, broken"),
    ({"centre": "alpha", "memory": "2G\n#SBATCH --uid=0"}, "Invalid memory:"),
    ({"centre": "alpha", "cmd": ["/bin/sh"]}, "Invalid cmd: unknown option"),
])
def test_bad_options_get_400_with_message_and_nothing_runs(api, centres, options, fragment):
    r = api.spawn(U2, options)
    assert r.status_code == 400
    assert fragment in r.json()["message"]
    assert api.server(U2) is None
    assert all(live_jobs(centres, c, U2) == [] for c in ("alpha", "beta", "gamma"))


def test_a_rest_spawn_is_refused_in_the_requests_language_with_the_same_field(api, centres):
    """Issue 26: Accept-Language zh-CN gets the refusal in Chinese; the option at fault and the
    refusal's code are the same machine-readable values in every language."""
    answers = {}
    for language in ("zh-CN,zh;q=0.9", "en-US"):
        r = api.post(f"/users/{U2}/server", json={"centre": "alpha", "cores": 64},
                     headers={"Accept-Language": language})
        assert r.status_code == 400, r.text
        answers[language] = (r.json()["message"], r.headers.get("X-FedHub-Field"), r.headers.get("X-FedHub-Code"))
    chinese, english = answers["zh-CN,zh;q=0.9"], answers["en-US"]
    assert chinese[0] == "cores 无效：64 超出了 Alpha 的分区 'cpu' 允许的范围；请填写 1-4", chinese[0]
    assert english[0] == "Invalid cores: 64 is outside what partition 'cpu' at Alpha allows; choose 1-4"
    assert chinese[1:] == english[1:] == ("cores", "invalid-options")
    assert api.server(U2) is None


HOSTILE = st.one_of(
    st.text(alphabet=st.sampled_from(list(";|&$`'\"\\\n *<>(){}#") + ["a", "1", "G", "-"]), min_size=1, max_size=40),
    st.integers(min_value=5, max_value=10**40), st.integers(max_value=0),
    st.sampled_from(["$(touch /tmp/pwned)", "cpu --uid=0", "4\nrm -rf /", "`id`", "x" * 500]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["centre", "partition", "cores", "memory", "walltime", "gpus", "gpu_type"]), value=HOSTILE)
def test_hostile_options_through_the_api_are_rejected(api, centres, field, value):
    options = {"centre": "alpha", field: value}
    r = api.spawn(U3, options)
    if r.status_code != 400:  # a harmless value (e.g. memory "1G") may be valid: it must then run sanely
        api.wait_ready(U3)
        # what Slurm runs is exactly what validation made of the accepted value
        accepted = parse_user_options(load_federation(centres.federation_file), options, U3)
        (job,) = live_jobs(centres, "alpha", U3)
        try:
            assert (job["cpus"], job["memory"], job["partition"]) == \
                (str(accepted.cores), format_memory_mb(accepted.memory_mb), accepted.partition), (value, job)
        finally:
            api.stop(U3)
        return
    assert r.json()["message"].startswith(f"Invalid {field}:")
    assert api.server(U3) is None
    assert live_jobs(centres, "alpha", U3) == []
    assert not os.path.exists("/tmp/pwned")


def test_form_page_shows_limits_and_rejection(hub, api, centres):
    s = requests.Session()
    s.get(f"{hub.url}/hub/login")
    s.post(f"{hub.url}/hub/login", data={"username": U2, "password": "fedhub-test", "_xsrf": s.cookies["_xsrf"]})
    page = s.get(f"{hub.url}/hub/spawn")
    assert page.status_code == 200
    assert '<option value="alpha"' in page.text and "Beta" in page.text
    r = s.post(f"{hub.url}/hub/spawn", data={"_xsrf": s.cookies["_xsrf"], "centre": "gamma", "partition": "small",
                                             "cores": "3", "memory": "1G", "walltime": "00:10:00"})
    assert r.status_code == 400
    assert "Invalid cores: 3 is outside what partition &#39;small&#39; at Gamma allows; choose 1-2" in r.text
    assert '<select class="form-select" id="fedhub-centre"' in r.text  # the form is shown again
    assert live_jobs(centres, "gamma", U2) == []
    r = s.post(f"{hub.url}/hub/spawn", data={"_xsrf": s.cookies["_xsrf"], "centre": "gamma", "partition": "small",
                                             "cores": "1", "memory": "1G", "walltime": "00:10:00"}, allow_redirects=False)
    assert r.status_code == 302 and "/hub/spawn-pending/" in r.headers["Location"]
    api.wait_ready(U2)
    assert len(live_jobs(centres, "gamma", U2)) == 1


def _server_token(user: str) -> str:
    """The API token inside the user's running job (read from its process, as root)."""
    pid = subprocess.run(["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True,
                         text=True).stdout.split()[0]
    env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"JUPYTERHUB_API_TOKEN="))


def test_port_report_accepts_only_a_port_from_the_starting_servers_token(api, hub, centres):
    url = f"{hub.url}/hub/api/batchspawner"
    api.spawn(U1, {"centre": "alpha", "walltime": "00:10:00"})
    api.wait_ready(U1)
    server_token = _server_token(U1)
    user_token = api.post(f"/users/{U1}/tokens", json={"note": "test"}).json()["token"]
    post = lambda token, body: requests.post(url, headers={"Authorization": f"token {token}"}, json=body, timeout=10)  # noqa: E731
    r = post(user_token, {"port": 1234})
    assert r.status_code == 403 and "Only a server's own token" in r.json()["message"]
    r = post(server_token, {"port": 1234, "ip": "10.6.6.6"})
    assert r.status_code == 400 and "exactly" in r.json()["message"]
    r = post(server_token, {"port": "1234; x"})
    assert r.status_code == 400
    r = post(server_token, {"port": 1234})
    assert r.status_code == 409 and "not starting" in r.json()["message"]
    # the running server is untouched
    assert api.through_proxy(U1).status_code == 200


def test_scancel_from_outside_is_noticed(api, centres):
    api.spawn(U2, {"centre": "gamma", "cores": 1, "walltime": "00:10:00"})
    api.wait_ready(U2)
    (job,) = live_jobs(centres, "gamma", U2)
    subprocess.run(["scancel", job["job_id"]], env={**os.environ, "SLURM_CONF": str(centres.centres["gamma"].conf)},
                   check=True)
    wait_for(lambda: api.server(U2) is None, 30, "the hub to notice the cancelled job")


def test_controller_down_for_a_while_keeps_one_server_and_cancels_the_stopped_one_once_back(api, centres):
    """One outage at gamma, two servers there: U3's, left alone, survives it; U1's, stopped
    meanwhile, is owed its scancel, which lands once gamma's controller answers again."""
    gamma = centres.centres["gamma"]
    api.spawn(U3, {"centre": "gamma", "cores": 1, "walltime": "00:10:00"})
    api.spawn(U1, {"centre": "gamma", "cores": 1, "walltime": "00:10:00"})
    api.wait_ready(U3)
    api.wait_ready(U1)
    (job,) = live_jobs(centres, "gamma", U1)
    gamma.stop_controller()
    try:
        began = time.monotonic()
        api.stop(U1, timeout=90)
        backlog = centres.root / "hub" / "state" / "owed-cancels.json"
        (owed,) = json.loads(backlog.read_text())
        assert (owed["centre"], owed["job_id"], owed["login"]) == ("gamma", job["job_id"], U1)
        assert "did not answer" in owed["reason"]
        assert backlog.stat().st_mode & 0o777 == 0o600  # private to the hub
        # longer than the grace before a centre counts as down (6 s here) and a failing squeue's
        # timeout (8 s) together: the server's polls (every 2 s) have met the outage at every stage
        time.sleep(max(0.0, 16 - (time.monotonic() - began)))
        assert api.server(U3) is not None and api.server(U3)["ready"]
        assert api.through_proxy(U3).status_code == 200
    finally:
        gamma.start_controller()
    wait_for(lambda: live_jobs(centres, "gamma", U1) == [], 40, "the owed scancel to reach Slurm")
    wait_for(lambda: live_jobs(centres, "gamma", U3), 20, "the job to be listed again")
    time.sleep(5)
    assert api.server(U3)["ready"]
    api.stop(U3)
    wait_for(lambda: live_jobs(centres, "gamma", U3) == [], 20, "the job to be cancelled")
    wait_for(lambda: json.loads(backlog.read_text()) == [], 10, "the backlog to empty")


def test_hub_restart_keeps_servers_at_two_centres(api, hub, centres, postgres):
    """The hub's database is PostgreSQL, as in a deployment: what the restarted hub knows of the
    servers and their jobs it reads from there."""
    api.spawn(U1, {"centre": "alpha", "cores": 1, "walltime": "00:10:00"})
    api.spawn(U2, {"centre": "beta", "cores": 1, "walltime": "00:10:00"})
    api.wait_ready(U1)
    api.wait_ready(U2)
    jobs = {c: live_jobs(centres, c) for c in ("alpha", "beta")}
    assert not (hub.workdir / "jupyterhub.sqlite").exists()
    in_db = postgres.psql("SELECT u.name, s.state FROM users u JOIN spawners s ON s.user_id = u.id "
                          "WHERE s.server_id IS NOT NULL ORDER BY u.name", database="fedhub_session")
    assert [line.split("|")[0] for line in in_db.splitlines()] == sorted([U1, U2])
    hub.restart()
    for user, centre in ((U1, "alpha"), (U2, "beta")):
        server = api.server(user)
        assert server is not None and server["ready"], server
        assert server["state"]["centre"] == centre
        assert api.through_proxy(user).status_code == 200
    assert {c: live_jobs(centres, c) for c in ("alpha", "beta")} == jobs


def test_a_user_starts_and_sees_only_their_own_server(api, hub, centres):
    """JupyterHub's scopes: a user's token reaches their own server, not another user's."""
    token = api.post(f"/users/{U1}/tokens", json={"note": "own"}).json()["token"]
    mine = requests.Session()
    mine.headers["Authorization"] = f"token {token}"
    r = mine.post(f"{hub.url}/hub/api/users/{U2}/server", json={"centre": "alpha"}, timeout=30)
    assert r.status_code == 404  # JupyterHub hides users a token may not see
    assert api.server(U2) is None and live_jobs(centres, "alpha", U2) == []
    r = mine.post(f"{hub.url}/hub/api/users/{U1}/server", json={"centre": "alpha", "walltime": "00:10:00"}, timeout=30)
    assert r.status_code in (201, 202), r.text
    api.wait_ready(U1)
    assert mine.get(f"{hub.url}/user/{U1}/api/status", timeout=30).status_code == 200
    api.spawn(U2, {"centre": "gamma", "walltime": "00:10:00"})
    api.wait_ready(U2)
    other = mine.get(f"{hub.url}/user/{U2}/api/status", timeout=30, allow_redirects=False)
    assert other.status_code in (302, 403)  # sent to log in as U2, never served


def test_spawn_at_a_centre_that_does_not_answer_says_so(api, centres):
    gamma = centres.centres["gamma"]
    gamma.stop_controller()
    try:
        r = api.spawn(U3, {"centre": "gamma", "walltime": "00:10:00"})
        assert r.status_code == 202, r.text
        messages = api.progress(U3)
        assert "Gamma is not answering, nothing was submitted. Try again later or choose another centre." in messages[-1]
        wait_for(lambda: api.server(U3) is None, 30, "the failed spawn to be cleaned up")
    finally:
        gamma.start_controller()
    wait_for(lambda: gamma.node_state().startswith(("idle", "mixed")), 30, "gamma to answer again")
    assert live_jobs(centres, "gamma", U3) == []
