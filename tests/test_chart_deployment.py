"""The chart's configuration run for real: the hub image's install step (FedHub's wheel into a
fresh venv at the image's path), then the pod the chart renders, run as the kubelet would run it
(tests/helpers/chart.py HubPod), against the test centres through their login nodes (alpha over
ssh with network direct, beta over ssh behind its firewall with a tunnel), the federation's
OpenID Connect login and a real PostgreSQL. A server at each centre, the pod deleted and
recreated, and everything is found again."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import zipfile
import sys
from pathlib import Path

import pytest
import requests
import yaml

from helpers.chart import CHART, REPO, HubPod, crypt_key_values, find, helm, render, write_values
from helpers.testbed import TEST_USERS, centre_entry, federation_variant, live_jobs, wait_for
from fedhub_testbed.centres import LoginNode
from fedhub_testbed.hub import PROXY
from fedhub_testbed.oidc import LocalOIDCProvider, Person
from helpers.support import oidc_log_in

pytestmark = [pytest.mark.slurm, pytest.mark.hub]

DOCKERFILE = REPO / "helm" / "image" / "Dockerfile"
IMAGE_VENV = Path("/opt/fedhub/hub")  # where the Dockerfile installs the wheel
POD_USER = "fedhub-pod"  # the image's non-root user (uid 1000 in the image)
PUBLIC = "http://127.0.0.1:8000"  # the pod's ports, as the chart renders them
HUB_API = "https://127.0.0.1:8081"  # internal SSL: jobs check the hub's certificate
PASSWORD = "chart-horse-battery"
USER, OTHER = TEST_USERS[0], TEST_USERS[1]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The Dockerfile's install step: FedHub's wheel (built from this checkout) into a fresh
    venv at the image's path."""
    text = DOCKERFILE.read_text()
    assert f"python -m venv {IMAGE_VENV}" in text
    assert f"{IMAGE_VENV}/bin/pip install --no-cache-dir /wheels/fedhub-*.whl" in text
    wheels = tmp_path_factory.mktemp("wheels")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("fedhub-*.whl")
    shutil.rmtree(IMAGE_VENV, ignore_errors=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(IMAGE_VENV)], check=True)
    installed = subprocess.run([str(IMAGE_VENV / "bin" / "pip"), "install", "-q", "--no-cache-dir", str(wheel)],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr
    yield wheel
    shutil.rmtree(IMAGE_VENV, ignore_errors=True)


def test_the_wheel_installs_into_a_fresh_venv_as_the_image_does(image, tmp_path):
    config = IMAGE_VENV / "share" / "fedhub" / "hub_config" / "jupyterhub_config.py"
    assert config.read_text() == (REPO / "hub_config" / "jupyterhub_config.py").read_text()  # not a second copy
    cmd = re.search(r'^CMD (\[.*\])$', DOCKERFILE.read_text(), re.M).group(1)
    assert yaml.safe_load(cmd) == ["jupyterhub", "--config", str(config)]
    _, docs = render([crypt_key_values(tmp_path)])
    hub = find(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    assert hub["command"] == ["jupyterhub", "--config", str(config)]  # the chart runs what the image has
    python = str(IMAGE_VENV / "bin" / "python")
    check = subprocess.run([python, "-c", "import fedhub.hub.chart, fedhub.spawning.spawner, psycopg, oauthenticator; "
                            "from importlib.metadata import entry_points as e; "
                            "print(sorted(x.name for x in e(group='jupyterhub.spawners')))"],
                           capture_output=True, text=True, cwd="/")
    assert check.returncode == 0, check.stderr
    assert "fedhub" in check.stdout
    assert subprocess.run([python, "-c", "import pytest"], capture_output=True, cwd="/").returncode != 0  # no test extras
    fedhub = subprocess.run([str(IMAGE_VENV / "bin" / "fedhub"), "--help"], capture_output=True, text=True)
    assert fedhub.returncode == 0 and "centres" in fedhub.stdout
    # the loopback testbed (Slurm daemons, sshd, netns, a node script) is not in the image
    with zipfile.ZipFile(image) as wheel:
        assert not [n for n in wheel.namelist() if "testbed" in n or "demo" in n or n.endswith(".mjs")]
    demo = subprocess.run([str(IMAGE_VENV / "bin" / "fedhub"), "demo"], capture_output=True, text=True)
    assert demo.returncode == 2 and "the demo's testbed (fedhub-testbed) is not installed" in demo.stderr


@pytest.fixture(scope="module")
def pod_user():
    if subprocess.run(["id", POD_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/srv/fedhub",
                        "--shell", "/usr/sbin/nologin", POD_USER], check=True)
    return POD_USER


@pytest.fixture(scope="module")
def provider(centres):
    people = {u: Person(PASSWORD, {"groups": ["researchers"]}) for u in (USER, OTHER)}
    provider = LocalOIDCProvider(centres.root / "oidc-chart", people)
    provider.allow_hub(PUBLIC)
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def alpha_login_node(centres):
    """alpha's login node (the session reaches alpha locally; a pod cannot)."""
    public = centres.hub_key.with_suffix(".pub").read_text()
    node = LoginNode(centres.centres["alpha"], centres.root / "ssh-chart", public)
    known = node.start()
    yield node, known
    node.stop()


def chart_values(centres, provider, alpha_login_node, db_url: str) -> dict:
    """What an operator of these centres would write: both through their login nodes."""
    # a copy with beta's tunnel on ports of its own (the session hub's forwards hold the usual ones)
    doc = yaml.safe_load(federation_variant(centres, "chart-federation.yaml", lambda doc: None).read_text())
    node, alpha_known = alpha_login_node
    alpha, beta = centre_entry(doc, "alpha"), centre_entry(doc, "beta")
    alpha["scheduler"] = {"type": "ssh", "host": node.address, "port": node.port, "query_user": "fedhub"}
    alpha["hub_connect_url"] = HUB_API  # direct: alpha's node calls the hub's API (hub.apiService)
    for entry in (alpha, beta):
        for key in ("key_file", "known_hosts_file"):
            entry["scheduler"].pop(key, None)
    beta_host = f"[{beta['scheduler']['host']}]:{beta['scheduler']['port']} "
    beta_known = next(line for line in centres.known_hosts.read_text().splitlines() if line.startswith(beta_host))
    key = centres.hub_key.read_text()
    d = provider.discovery
    return {
        "hub": {"publicUrl": PUBLIC + "/", "adminUsers": [USER], "db": {"url": db_url}, "cryptKey": secrets.token_hex(32),
                "config": {"FederatedSpawner": {"start_timeout": 120, "poll_interval": 2, "scheduler_timeout": 12,
                                                "cancel_retry_interval": 2}}},
        "auth": {"oidc": {"clientId": provider.client_id, "clientSecret": provider.client_secret,
                          "authorizeUrl": d["authorization_endpoint"], "tokenUrl": d["token_endpoint"],
                          "userdataUrl": d["userinfo_endpoint"], "allowedUsers": [USER, OTHER]}},
        "federation": {"version": 1, "centres": [alpha, beta]},
        "centreSecrets": {"alpha": {"sshPrivateKey": key, "knownHosts": alpha_known},
                          "beta": {"sshPrivateKey": key, "knownHosts": beta_known}},
        "networkPolicy": {"loginNodes": {"alpha": ["127.0.0.1/32"], "beta": ["127.0.0.1/32"]},
                          "identityProvider": ["127.0.0.1/32"]},
    }


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def pod(image, pod_user, centres, postgres, provider, alpha_login_node, tmp_path_factory):
    busy = [p for p in (8000, 8001, 8081, 8082, 8083) if not port_free(p)]
    assert not busy, f"the pod's ports {busy} are in use on this machine (a demo running?); stop it first"
    root = tmp_path_factory.mktemp("pod")
    values = write_values(root, chart_values(centres, provider, alpha_login_node, postgres.database("fedhub_chart")))
    lint = helm("lint", "--strict", str(CHART), values=[values])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    _, docs = render([values])
    state = root / "state-volume"  # the PersistentVolumeClaim
    state.mkdir()
    shutil.chown(state, pod_user, pod_user)
    state.chmod(0o700)
    pod = HubPod(docs, root / "pod", state, pod_user, PROXY)
    made = [p for p in ("/etc/fedhub", "/var/lib/fedhub", "/srv/fedhub") if not os.path.exists(p)]
    pod.start()
    try:
        wait_for(lambda: answers(f"{PUBLIC}/hub/health") or pod.procs[1].poll() is not None, 90, "the hub to start")
        assert pod.procs[1].poll() is None, pod.log_tail()
        wait_for(lambda: answers(f"{PUBLIC}/hub/api/"), 30, "the proxy to route to the hub")
        wait_for(lambda: pod.starts() == 1, 60, "the hub's services and routes")
        yield pod
    finally:
        pod.stop()
        for path in made:  # the empty mount points this test made on the machine
            shutil.rmtree(path, ignore_errors=True)


def spawn(session: requests.Session, user: str, options: dict) -> None:
    r = session.post(f"{PUBLIC}/hub/api/users/{user}/server", json=options, timeout=60)
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: server(session, user).get("ready"), 150, f"{user}'s server to be ready")


def lab(session: requests.Session, user: str) -> requests.Response:
    """The user's lab, as the browser opens it (the server's own login with the hub on the way)."""
    return session.get(f"{PUBLIC}/user/{user}/lab", timeout=30, headers={"X-XSRFToken": None})


def server(session: requests.Session, user: str) -> dict:
    r = session.get(f"{PUBLIC}/hub/api/users/{user}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["servers"].get("", {})


def test_the_rendered_configuration_runs_a_hub_whose_servers_survive_a_new_pod(pod, centres, postgres, provider):
    alice = oidc_log_in(PUBLIC, USER, PASSWORD)
    bob = oidc_log_in(PUBLIC, OTHER, PASSWORD)
    spawn(alice, USER, {"centre": "beta", "cores": 1, "walltime": "00:10:00"})   # ssh, tunnel
    spawn(bob, OTHER, {"centre": "alpha", "cores": 1, "walltime": "00:10:00"})   # ssh, direct
    for session, user in ((alice, USER), (bob, OTHER)):
        page = lab(session, user)
        assert page.status_code == 200 and page.url == f"{PUBLIC}/user/{user}/lab", (page.status_code, page.url)
    users = alice.get(f"{PUBLIC}/hub/api/users", timeout=30)  # hub.adminUsers: alice is an admin
    assert sorted(u["name"] for u in users.json()) == sorted([USER, OTHER])
    jobs = {c: live_jobs(centres, c) for c in ("alpha", "beta")}
    assert [j["user"] for j in jobs["beta"] if j["user"] == USER] and [j["user"] for j in jobs["alpha"] if j["user"] == OTHER]

    # The pod is deleted and a new one starts: a new working directory and /tmp, the same
    # database and state volume. Its proxy is new too: the hub gives it every route again.
    state_before = sorted(p.name for p in pod.state.iterdir())
    pod.stop()
    assert list(pod.workdir.iterdir()) == []  # nothing was written in the working directory
    assert "hub-id" in state_before and "jupyterhub.sqlite" not in state_before
    assert USER in postgres.psql("SELECT name FROM users", database="fedhub_chart").split()
    pod.start()
    wait_for(lambda: answers(f"{PUBLIC}/hub/api/") and pod.starts() == 2, 90, "the new pod's hub behind its proxy")
    for session, user, centre in ((alice, USER, "beta"), (bob, OTHER, "alpha")):
        found = wait_for(lambda: server(session, user), 30, f"{user}'s server in the new pod")
        assert found["ready"] and found["user_options"]["centre"] == centre, found
        wait_for(lambda: lab(session, user).status_code == 200, 60,
                 f"{user}'s server through the new pod's proxy")
    assert {c: live_jobs(centres, c) for c in ("alpha", "beta")} == jobs  # the same jobs, none lost

    # bob stops his server while alpha's controller is down: the scancel is owed, kept on the
    # state volume, and the next pod makes it once alpha answers again; alice's stops normally
    alpha = centres.centres["alpha"]
    bob_jobs = [j["job_id"] for j in jobs["alpha"] if j["user"] == OTHER]
    alpha.stop_controller()
    try:
        r = bob.delete(f"{PUBLIC}/hub/api/users/{OTHER}/server", timeout=120)
        assert r.status_code in (202, 204), r.text
        owed_file = pod.state / "owed-cancels.json"
        owed = wait_for(lambda: owed_file.exists() and json.loads(owed_file.read_text()), 90, "the owed scancel")
        assert [(o["centre"], o["job_id"]) for o in owed] == [("alpha", job) for job in bob_jobs]
        pod.stop()
        pod.start()
        wait_for(lambda: answers(f"{PUBLIC}/hub/api/") and pod.starts() == 3, 90, "the third pod's hub")
    finally:
        alpha.start_controller()
    wait_for(lambda: not [j for j in live_jobs(centres, "alpha", OTHER)], 90, "the owed scancel to reach alpha")
    wait_for(lambda: json.loads(owed_file.read_text()) == [], 30, "the owed scancels to be done")
    r = alice.delete(f"{PUBLIC}/hub/api/users/{USER}/server", timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not live_jobs(centres, "beta", USER), 60, "alice's job to end")
    log = (pod.root / "hub.log").read_text()
    assert "Traceback" not in log, pod.log_tail()
