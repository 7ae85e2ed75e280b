"""A centre reached only through its login node (network mode tunnel), on the real login node
(sshd on loopback) through a real hub and proxy: the server reports its port and activity
through the login node, the proxy reaches it through the hub's forward, a dropped connection and
a hub restart are survived, and stopping leaves nothing behind.

(The firewalled variant, with the compute node in its own network namespace, is the next step.)
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (HUB_CONFIG, TEST_HUB_CONFIG, TEST_USERS, HubAPI, centre_entry, federation_variant, live_jobs,
                      wait_for)
from fedhub.demo.centres import free_port
from fedhub.demo.hub import LocalHub

U1 = TEST_USERS[0]


@pytest.fixture(scope="module")
def tunnel_hub(centres, tmp_path_factory):
    ports = {"hub_api_port": free_port(), "public_port": free_port()}
    taken = socket.socket()  # a port on the login node that something else already holds
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    wrong_keys = tmp_path_factory.mktemp("keys") / "known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_keys.with_name("other"))], check=True)
    login = centre_entry(yaml_doc(centres), "beta")["scheduler"]
    wrong_keys.write_text(f"[127.0.0.1]:{login['port']} {wrong_keys.with_name('other.pub').read_text()}")

    def add_tunnel_centres(doc):
        beta = centre_entry(doc, "beta")
        entry = dict(beta, id="tunnel", name="Beta through its login node")
        entry["network"] = {"mode": "tunnel", "login_node_address": "127.0.0.1", **ports}
        blocked = dict(beta, id="blocked", name="Blocked")
        blocked["network"] = {"mode": "tunnel", "login_node_address": "127.0.0.1", "public_port": free_port(),
                              "hub_api_port": taken.getsockname()[1]}
        impostor = dict(beta, id="impostor", name="Impostor",
                        scheduler=dict(beta["scheduler"], known_hosts_file=str(wrong_keys)))
        impostor["network"] = {"mode": "tunnel", "login_node_address": "127.0.0.1", "hub_api_port": free_port(),
                               "public_port": free_port()}
        doc["centres"] = [entry, blocked, impostor]
    path = federation_variant(centres, "tunnel.yaml", add_tunnel_centres)
    hub = LocalHub(path, centres.root / "hub-tunnel", config_file=HUB_CONFIG, users=TEST_USERS,
                   password="fedhub-test", api_token=secrets.token_hex(24), extra_config=TEST_HUB_CONFIG)
    hub.start()
    hub.ports = ports
    api = HubAPI(hub)
    for user in TEST_USERS:
        api.post(f"/users/{user}")
    yield hub
    hub.stop()
    taken.close()


def yaml_doc(centres) -> dict:
    import yaml
    return yaml.safe_load(centres.federation_file.read_text())


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def job_env(user: str) -> dict[str, str]:
    pid = subprocess.run(["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True,
                         text=True).stdout.split()[0]
    return dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)


def test_a_server_behind_the_login_node_is_reached_both_ways_and_survives_drops_and_restarts(tunnel_hub, centres):
    api = HubAPI(tunnel_hub)
    r = api.spawn(U1, {"centre": "tunnel", "cores": 1, "walltime": "00:10:00"})
    assert r.status_code in (201, 202), r.text
    try:
        server = api.wait_ready(U1, 90)
        tunnel = server["state"]["tunnel"]
        # the server reached the hub through the login node's forward, and the proxy reaches the
        # server through the hub's forward on its loopback
        assert job_env(U1)["JUPYTERHUB_API_URL"] == f"http://127.0.0.1:{tunnel_hub.ports['hub_api_port']}/hub/api"
        assert port_open(tunnel["local_port"]) and tunnel["local_port"] != tunnel["port"]
        assert api.through_proxy(U1).status_code == 200
        # the operator's view: each centre's network mode and whether the hub's connection opens
        import json
        import sys
        out = subprocess.run([sys.executable, "-m", "fedhub.cli", "centres", "-f", str(tunnel_hub.federation_file),
                              "--json"], capture_output=True, text=True, timeout=120)
        rows = {r["id"]: r for r in json.loads(out.stdout)["centres"]}
        assert rows["tunnel"]["network"] == {"mode": "tunnel", "login_node_address": "127.0.0.1"}
        assert rows["tunnel"]["connection"] == "connected"
        assert rows["impostor"]["connection"].startswith("not connected: Host key verification failed")

        # the hub's connection to the login node drops: it comes back with its forwards, by itself
        masters = [pid for args, pid in tunnel_hub.service_pids().items() if args.startswith("ssh ") and " -M " in args]
        assert masters, tunnel_hub.service_pids()
        for pid in masters:
            os.kill(pid, signal.SIGKILL)
        dropped = time.monotonic()
        wait_for(lambda: api.through_proxy(U1).status_code == 200, 20, "the lab to answer again after the drop", 0.5)
        assert time.monotonic() - dropped < 15

        # a hub restart restores the forwards of the running server
        tunnel_hub.restart()
        wait_for(lambda: api.through_proxy(U1).status_code == 200, 30, "the lab to answer after a hub restart", 0.5)
    finally:
        api.stop(U1)
    # stopping leaves nothing: no job, no forward
    wait_for(lambda: live_jobs(centres, "beta", U1) == [], 30, "the job to end")
    assert not port_open(tunnel["local_port"])


@pytest.mark.parametrize("centre,message", [
    ("blocked", "Blocked's login node did not open 127.0.0.1:"),
    ("impostor", "Impostor's login node: 127.0.0.1:"),
])
def test_a_tunnel_that_cannot_be_made_is_said_and_nothing_is_submitted(tunnel_hub, centres, centre, message):
    api = HubAPI(tunnel_hub)
    r = api.spawn(U1, {"centre": centre, "cores": 1, "walltime": "00:10:00"})
    # the test hub answers at once (202); a start that fails at once may already be over (201)
    assert r.status_code in (201, 202), r.text
    last = api.progress(U1)[-1]
    assert message in last, last
    assert "Nothing was submitted" in last
    if centre == "impostor":
        assert "did not present the pinned host key" in last
    else:
        assert "port is free, or change network.hub_api_port/public_port for centre blocked" in last
    wait_for(lambda: api.server(U1) is None, 30, "the failed spawn to leave no record")
    assert live_jobs(centres, "beta", U1) == []
