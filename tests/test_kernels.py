"""Kernels at any centre, through the real hub: a server at alpha asks for a kernel at beta (the
firewalled centre); the kernel runs as a Slurm job there, reaches the hub only through beta's login
node, and is reached through the hub's relay. Another user cannot see or end it; shutting it down
or cancelling its job from outside leaves nothing behind and says why.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
import zmq

from helpers.testbed import JOBENV, TEST_USERS, HubAPI, live_jobs, slurm, wait_for
from helpers.support import execute_in_kernel

USER, OTHER = TEST_USERS[2], TEST_USERS[1]


class KernelAPI:
    """The hub's kernel API as a notebook server (or its user) calls it."""

    def __init__(self, hub, user: str, token: str):
        self.base = f"{hub.url}/hub/api/fedhub/users/{user}"
        self.token = token
        self.headers = {"Authorization": f"token {token}"}

    def call(self, method: str, path: str, **kw):
        return requests.request(method, f"{self.base}/{path}", headers=self.headers, timeout=60, **kw)

    def start(self, **options):
        return self.call("POST", "kernels", json={**KernelKeys().body, **options})

    def wait_ready(self, kernel_id: str, timeout: float = 90) -> dict:
        def ready():
            record = self.call("GET", f"kernels/{kernel_id}").json()
            assert record["status"] != "ended", record
            return record if record["status"] == "ready" else None
        return wait_for(ready, timeout, f"kernel {kernel_id} to be ready", 0.5)


@pytest.fixture(scope="module")
def server_at_alpha(hub):
    api = HubAPI(hub)
    r = api.spawn(USER, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:30:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(USER, 90)
    token = api.post(f"/users/{USER}/tokens", json={"note": "kernel tests"}).json()["token"]
    other = api.post(f"/users/{OTHER}/tokens", json={"note": "kernel tests"}).json()["token"]
    yield KernelAPI(hub, USER, token), KernelAPI(hub, USER, other)
    api.stop(USER)


class KernelKeys:
    """What a notebook server makes for a kernel: its HMAC key and CurveZMQ pair."""

    def __init__(self):
        self.key = secrets.token_hex(16)
        self.curve_public, self.curve_secret = (k.decode() for k in zmq.curve_keypair())

    @property
    def body(self) -> dict:  # what the server sends the hub (the public half follows from the secret)
        return {"key": self.key, "curve_secretkey": self.curve_secret}


def client_for(record: dict, keys: KernelKeys):
    from jupyter_client import BlockingKernelClient
    client = BlockingKernelClient()
    client.load_connection_info({**record["connection"], "key": keys.key.encode(), "transport": "tcp",
                                 "signature_scheme": "hmac-sha256", "curve_publickey": keys.curve_public,
                                 "curve_secretkey": keys.curve_secret})
    client.start_channels()
    client.wait_for_ready(timeout=30)
    return client


def run(client, code: str) -> str:
    out = []
    reply = client.execute_interactive(code, timeout=30, output_hook=lambda msg: out.append(
        msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def test_centres_offered_for_kernels_with_their_defaults(server_at_alpha):
    mine, _ = server_at_alpha
    centres = {c["id"]: c for c in mine.call("GET", "kernel-centres").json()["centres"]}
    assert centres["beta"]["kernel_name"] == "fedhub-beta" and centres["beta"]["available"]
    assert centres["beta"]["defaults"] == {"partition": "batch", "cores": 1, "memory_mb": 1024, "walltime_s": 3600}
    # where a kernel leaving alpha would start soonest: the "any centre" placement, alpha left out
    suggested = mine.call("GET", "kernel-centres?suggest_from=alpha").json()["suggested"]
    assert suggested["id"] in ("beta", "gamma") and suggested["why"] == "starts now", suggested


def test_a_kernel_at_a_firewalled_centre_runs_there_and_ends_with_nothing_left(server_at_alpha, centres):
    mine, other = server_at_alpha
    keys = KernelKeys()
    r = mine.call("POST", "kernels", json={"centre": "beta", "cores": 1, "walltime": "00:10:00", **keys.body})
    assert r.status_code == 202, r.text
    record = r.json()
    assert record["message"].startswith("Submitted to Beta as job ") and record["job_id"]
    assert [j["job_id"] for j in live_jobs(centres, "beta", USER)] == [record["job_id"]]
    record = mine.wait_ready(record["id"])
    assert record["message"].startswith("Kernel running at Beta on beta-n1")
    # when the walltime will end it (the lab offers a move before then)
    ends = datetime.fromisoformat(record["ends_at"])
    assert 9 * 60 < (ends - datetime.now(timezone.utc)).total_seconds() <= 10 * 60 + 5, record

    # another user's token can neither see nor end it
    assert other.call("GET", f"kernels/{record['id']}").status_code == 404
    assert other.call("DELETE", f"kernels/{record['id']}").status_code == 404
    assert other.call("GET", "kernels").status_code == 404

    client = client_for(record, keys)
    try:
        where = run(client, "import os, socket; print(os.environ['SLURM_CLUSTER_NAME'], os.environ['SLURM_JOB_ID'])")
        assert where.split() == ["beta", record["job_id"]]
        # nothing secret in the kernel's environment
        assert run(client, "print(sorted(k for k in os.environ if 'FEDHUB_KERNEL' in k or 'API_TOKEN' in k))") \
            == "[]\n"
    finally:
        client.stop_channels()
    ip, shell = record["connection"]["ip"], record["connection"]["shell_port"]
    assert port_open(ip, shell)

    assert mine.call("DELETE", f"kernels/{record['id']}").status_code == 204
    assert live_jobs(centres, "beta", USER) == []
    assert not port_open(ip, shell)
    assert mine.call("GET", f"kernels/{record['id']}").status_code == 404


def test_a_kernel_job_cancelled_from_outside_shows_as_ended_with_slurms_reason(server_at_alpha, centres, hub):
    mine, _ = server_at_alpha
    record = mine.wait_ready(mine.start(centre="beta", walltime="00:10:00").json()["id"])
    slurm(centres, "beta", "scancel", record["job_id"])
    cancelled = time.monotonic()
    ended = wait_for(lambda: (lambda r: r if r["status"] == "ended" else None)(
        mine.call("GET", f"kernels/{record['id']}").json()), 30, "the kernel to show as ended", 0.5)
    assert time.monotonic() - cancelled < 3 * 3 + 5  # within a monitor interval or so (the tests' is 3 s)
    assert ended["message"].startswith(f"Kernel job {record['job_id']} at Beta ended: CANCELLED"), ended
    assert not port_open(record["connection"]["ip"], record["connection"]["shell_port"])


def test_bad_kernel_requests_name_the_field(server_at_alpha, centres):
    mine, _ = server_at_alpha
    assert mine.call("POST", "kernels", json={"centre": "beta"}).json()["message"].startswith("key:")
    r = mine.call("POST", "kernels", json={"centre": "beta", "key": KernelKeys().key, "curve_secretkey": "short"})
    assert r.status_code == 400 and r.json()["message"].startswith("curve_secretkey: give the kernel's CurveZMQ")
    r = mine.start(centre="beta", cores=99)
    assert r.status_code == 400 and "cores: 99 is outside what partition 'batch' at Beta allows" in r.text
    r = mine.start(centre="beta", shell="rm -rf /")
    assert r.status_code == 400 and "shell: unknown option" in r.text
    r = mine.start(centre="beta", project="x; rm")
    assert r.status_code == 400 and r.json()["message"] == "project: Beta offers no choice of project; leave project out"
    assert live_jobs(centres, "beta", USER) == []
    r = mine.call("GET", "kernels/00000000deadbeef?status=pending&wait=soon")
    assert r.status_code == 400 and r.json()["message"].startswith("wait: seconds (0-30)"), r.text


def test_a_launcher_of_another_release_is_refused_saying_what_to_install(hub):
    """The launcher runs from each centre's notebook environment, which an operator upgrades
    apart from the hub: a launcher that speaks another protocol version (or none) is told so."""
    url = f"{hub.url}/hub/api/fedhub/kernels/00000000deadbeef/launcher"
    for spoken in ({}, {"FedHub-Launcher-Protocol": "0"}, {"FedHub-Launcher-Protocol": "2"}):
        r = requests.post(url, json={"exited": 0}, headers={"Authorization": "kernel x", **spoken}, timeout=30)
        assert r.status_code == 400, r.text
        assert "install the fedhub-lab of this hub's release in the centre's notebook environment" in r.json()["message"]
        assert f"speaks protocol {spoken.get('FedHub-Launcher-Protocol', 'none')}" in r.json()["message"]
    # the version it speaks passes on to the token check
    r = requests.post(url, json={"exited": 0}, timeout=30,
                      headers={"Authorization": "kernel x", "FedHub-Launcher-Protocol": "1"})
    assert r.status_code == 403 and "unknown kernel or wrong token" in r.json()["message"], r.text


def test_a_long_poll_answers_with_each_new_status_until_ready(server_at_alpha):
    mine, _ = server_at_alpha
    record = mine.start(centre="beta", walltime="00:10:00").json()
    seen = [record["status"]]
    while seen[-1] != "ready":
        record = mine.call("GET", f"kernels/{record['id']}?status={seen[-1]}&wait=30").json()
        assert record["status"] != "ended", record
        if record["status"] != seen[-1]:
            seen.append(record["status"])
    assert seen[0] == "submitted" and seen[-1] == "ready" and len(seen) == len(set(seen)), seen
    assert mine.call("DELETE", f"kernels/{record['id']}").status_code == 204


def test_the_kernel_conformance_suite_passes_through_the_provisioner(server_at_alpha, hub, centres):
    """jupyter_kernel_test, plus stdin, interrupt and restart, run in the notebook environment
    against fedhub-beta as the notebook server would start it (the provisioner, the hub, the job)."""
    mine, _ = server_at_alpha
    env = {"PATH": f"{JOBENV}/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           # through the proxy: the hub itself takes only TLS clients with a certificate of its CA
           "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.public_port}/hub/api", "JUPYTERHUB_API_TOKEN": mine.token,
           "JUPYTERHUB_USER": USER, "FEDHUB_TEST_CENTRE": "beta",
           "FEDHUB_KERNEL_CENTRES": json.dumps([{"id": "beta", "name": "Beta", "options": {
               "partition": "batch", "cores": 1, "memory": "1G", "walltime": "00:20:00"}}])}
    r = subprocess.run([f"{JOBENV}/bin/python", "-m", "unittest", "-v", "kernel_conformance"],
                       cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    results = dict(re.findall(r"^(test_\w+) \(.*\) \.\.\. (\w+)", r.stderr, re.M))
    assert "FAIL" not in r.stderr and "ERROR" not in r.stderr, r.stderr[-3000:]
    for name in ("test_kernel_info", "test_execute_stdout", "test_completion", "test_inspect", "test_pager",
                 "test_stdin_round_trip", "test_interrupt_stops_the_loop_and_the_job_lives_on",
                 "test_zz_restart_keeps_the_job_and_clears_the_variables", "test_where_the_kernel_runs"):
        assert results.get(name) == "ok", (name, r.stderr[-3000:])
    wait_for(lambda: live_jobs(centres, "beta", USER) == [], 30, "the kernel's job to end with the suite")


def test_a_hub_restart_keeps_the_kernel_and_its_connection(server_at_alpha, hub, centres):
    mine, _ = server_at_alpha
    keys = KernelKeys()
    record = mine.wait_ready(mine.call("POST", "kernels", json={"centre": "beta", "walltime": "00:10:00",
                                                                 **keys.body}).json()["id"])
    client = client_for(record, keys)
    try:
        run(client, "kept = 41")
        hub.restart()
        # the same client, the same ports: the relay comes back with the hub, the kernel kept its state
        wait_for(lambda: mine.call("GET", f"kernels/{record['id']}").status_code == 200, 30, "the hub's API")
        assert mine.call("GET", f"kernels/{record['id']}").json()["status"] == "ready"
        wait_for(lambda: port_open(record["connection"]["ip"], record["connection"]["shell_port"]), 30,
                 "the relay to be restored", 0.5)
        # as a Jupyter server does on a reconnect: ZeroMQ reconnects each channel on its own timer,
        # and output published before IOPub is back is not replayed
        client.wait_for_ready(timeout=30)
        assert run(client, "print(kept + 1)") == "42\n"
    finally:
        client.stop_channels()
        ended = mine.call("DELETE", f"kernels/{record['id']}").status_code
    assert ended == 204
    assert live_jobs(centres, "beta", USER) == []


def test_stopping_the_server_ends_its_kernels(hub, centres):
    api, user = HubAPI(hub), TEST_USERS[0]
    r = api.spawn(user, {"centre": "alpha", "cores": 1, "memory": "1G", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(user, 90)
    token = api.post(f"/users/{user}/tokens", json={"note": "kernel tests"}).json()["token"]
    kernels = KernelAPI(hub, user, token)
    # one kernel through the server (its provisioner must let the server exit once the hub
    # revoked the server's token), one through the hub's API
    started = requests.post(f"{hub.url}/user/{user}/api/kernels", json={"name": "fedhub-beta"},
                            headers=kernels.headers, timeout=120)
    assert started.status_code == 201, started.text
    record = kernels.wait_ready(kernels.start(centre="beta", walltime="00:10:00").json()["id"])
    assert len(live_jobs(centres, "beta", user)) == 2
    api.stop(user)
    assert live_jobs(centres, "beta", user) == [] and live_jobs(centres, "alpha", user) == []
    assert not port_open(record["connection"]["ip"], record["connection"]["shell_port"])
    # and no process of the user's is left at any centre (a server stuck in its shutdown would be)
    # (the hub's ssh connection to beta's login node stays: it serves every user there)
    jupyter = "jupyterhub-singleuser|fedhub_lab.launcher|ipykernel"
    wait_for(lambda: subprocess.run(["pgrep", "-u", user, "-f", jupyter], capture_output=True).returncode == 1,
             20, f"every server and kernel process of {user} to end")


def test_a_kernel_is_refused_where_the_allocation_is_used_up(hub, centres):
    # the user's server runs at gamma: Slurm kills running jobs of an association whose
    # GrpTRESMins is reached, so alpha's limit must not hold the server itself
    api, user = HubAPI(hub), TEST_USERS[0]
    r = api.spawn(user, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(user, 90)
    mine = KernelAPI(hub, user, api.post(f"/users/{user}/tokens", json={"note": "kernel tests"}).json()["token"])
    limit = ["sacctmgr", "-i", "modify", "user", user, f"account=proj_{user}", "cluster=alpha", "set"]
    slurm(centres, "alpha", *limit, "GrpTRESMins=cpu=0")
    try:
        def refused():
            r = mine.start(centre="alpha", walltime="00:10:00")
            if r.status_code == 202:  # the service had not read the new limit yet
                mine.call("DELETE", f"kernels/{r.json()['id']}")
                return None
            return [r]
        (r,) = wait_for(refused, 30, "the hub to see the used-up allocation", 1)
        assert r.status_code == 403, r.text
        message = r.json()["message"]
        assert message.startswith(f"Your allocation proj_{user} at Alpha is used up: 0."), message
        assert "Centres where you still have allocation: gamma" in message
        centres_offered = {c["id"]: c for c in mine.call("GET", "kernel-centres").json()["centres"]}
        assert not centres_offered["alpha"]["available"]
        assert centres_offered["alpha"]["reason"] == f"allocation used up: proj_{user} at Alpha"
        assert centres_offered["gamma"]["available"]
        assert live_jobs(centres, "alpha", user) == []
        again = mine.start(centre="alpha", walltime="00:10:00")  # asked again: the same answer
        assert (again.status_code, again.json()["message"]) == (403, message)
    finally:
        slurm(centres, "alpha", *limit, "GrpTRESMins=cpu=-1")
        # the next test may spawn at alpha at once: wait until the hub reads the limit as lifted
        wait_for(lambda: {c["id"]: c for c in mine.call("GET", "kernel-centres").json()["centres"]}
                 ["alpha"]["available"], 30, "the hub to see alpha's allocation again", 1)
        api.stop(user)


def test_a_kernel_job_reaching_its_walltime_shows_as_ended_with_slurms_reason(server_at_alpha, centres):
    """At gamma, which keeps accounts: the job is charged to the user's project there. The kernel
    asks for FedHub's shortest walltime (a minute); the centre then takes that minute off the
    running job's limit (`scontrol update TimeLimit=-1`, as an operator shortening a job does),
    so Slurm ends it at its next time-limit check (every 30 s) instead of a minute later: the same
    TIMEOUT, about a minute sooner. (Slurm counts limits in whole minutes: "0:15" is still one.)"""
    mine, _ = server_at_alpha
    record = mine.wait_ready(mine.start(centre="gamma", walltime="00:01:00").json()["id"])
    slurm(centres, "gamma", "scontrol", "update", f"JobId={record['job_id']}", "TimeLimit=-1")
    ended = wait_for(lambda: (lambda r: r if r["status"] == "ended" else None)(
        mine.call("GET", f"kernels/{record['id']}").json()), 150, "the kernel's walltime to end it", 1)
    assert ended["message"].startswith(f"Kernel job {record['job_id']} at Gamma ended: TIMEOUT (TimeLimit)"), ended
    assert live_jobs(centres, "gamma", USER) == []
    assert not port_open(record["connection"]["ip"], record["connection"]["shell_port"])
    # charged like a server: to the user's account there, where the quota figures read it
    accounted = wait_for(lambda: (lambda out: out if "TIMEOUT" in out else None)(slurm(
        centres, "gamma", "sacct", "-n", "-X", "-P", "-j", record["job_id"], "-o", "Account,State")),
        30, "the accounting database to record the job")
    assert accounted == f"proj_{USER}|TIMEOUT", accounted


def test_another_users_token_cannot_start_see_or_stop_kernels_through_the_server(server_at_alpha, hub, centres):
    mine, other = server_at_alpha
    server = f"{hub.url}/user/{USER}/api/kernels"
    as_other = {"Authorization": f"token {other.token}"}
    r = requests.post(server, json={"name": "fedhub-beta"}, headers=as_other, timeout=60)
    assert r.status_code == 403, r.text
    assert live_jobs(centres, "beta", USER) == []
    started = requests.post(server, json={"name": "fedhub-beta"}, headers=mine.headers, timeout=120)
    assert started.status_code == 201, started.text
    kernel = f"{server}/{started.json()['id']}"
    try:
        assert requests.get(server, headers=as_other, timeout=60).status_code == 403
        assert requests.get(kernel, headers=as_other, timeout=60).status_code == 403
        assert requests.delete(kernel, headers=as_other, timeout=60).status_code == 403
        assert len(live_jobs(centres, "beta", USER)) == 1
    finally:
        assert requests.delete(kernel, headers=mine.headers, timeout=60).status_code == 204
    wait_for(lambda: live_jobs(centres, "beta", USER) == [], 30, "the kernel's job to end")


def test_a_server_at_the_firewalled_centre_runs_a_kernel_at_another(hub, centres):
    """The server's side of the relay too: its login node forwards back to the kernel's ports."""
    api, user = HubAPI(hub), TEST_USERS[1]
    r = api.spawn(user, {"centre": "beta", "cores": 1, "memory": "1G", "walltime": "00:20:00"})
    assert r.status_code in (201, 202), r.text
    try:
        api.wait_ready(user, 90)
        token = api.post(f"/users/{user}/tokens", json={"note": "kernel tests"}).json()["token"]
        headers = {"Authorization": f"token {token}"}
        started = requests.post(f"{hub.url}/user/{user}/api/kernels", json={"name": "fedhub-alpha"},
                                headers=headers, timeout=120)
        assert started.status_code == 201, started.text
        out = execute_in_kernel(hub.url, user, token, started.json()["id"],
                                "import os; print(os.environ['SLURM_CLUSTER_NAME'])")["stdout"]
        assert out == "alpha\n"
        kernels = KernelAPI(hub, user, token).call("GET", "kernels").json()["kernels"]
        assert [k["connection"]["ip"] for k in kernels] == [centres.centres["beta"].network.login_inner_address]
        requests.delete(f"{hub.url}/user/{user}/api/kernels/{started.json()['id']}", headers=headers, timeout=60)
        wait_for(lambda: live_jobs(centres, "alpha", user) == [], 30, "the kernel's job to end")
    finally:
        api.stop(user)
