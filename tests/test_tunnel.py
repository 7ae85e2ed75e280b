"""A firewalled centre (beta: its compute node in a private network namespace, its login node the
only bridge), through a real hub and proxy: the node cannot reach the hub directly; the server
reports its port and activity through the login node's return forwards, the proxy reaches it
through the hub's forward; a dropped connection and a hub restart are survived, and stopping
leaves nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.testbed import (HUB_CONFIG, TEST_HUB_CONFIG, TEST_USERS, HubAPI, centre_entry, federation_variant, live_jobs,
                      wait_for)
from fedhub_testbed.centres import free_port
from fedhub_testbed.hub import LocalHub

U1 = TEST_USERS[0]


@pytest.fixture(scope="module")
def tunnel_hub(centres, tmp_path_factory):
    beta = centres.centres["beta"]
    wrong_keys = tmp_path_factory.mktemp("keys") / "known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_keys.with_name("other"))], check=True)
    login = centre_entry(yaml_doc(centres), "beta")["scheduler"]
    wrong_keys.write_text(f"[{login['host']}]:{login['port']} {wrong_keys.with_name('other.pub').read_text()}")

    def add_broken_variants(doc):
        entry = centre_entry(doc, "beta")
        # a port on the login node that something else already holds: beta's own slurmctld
        blocked = dict(entry, id="blocked", name="Blocked", network=dict(entry["network"], hub_api_port=beta.ctld_port))
        impostor = dict(entry, id="impostor", name="Impostor",
                        scheduler=dict(entry["scheduler"], known_hosts_file=str(wrong_keys)),
                        network=dict({k: v for k, v in entry["network"].items() if k != "public_port"}, hub_api_port=free_port()))
        # alpha keeps accounts, so this hub runs the quota service the lab reaches through the login node too
        doc["centres"] = [entry, blocked, impostor, centre_entry(doc, "alpha")]
    path = federation_variant(centres, "tunnel.yaml", add_broken_variants)
    # servers report activity every 5 s (default 5 min), so the test sees it arrive
    hub = LocalHub(path, centres.root / "hub-tunnel", config_file=HUB_CONFIG, users=TEST_USERS,
                   password="fedhub-test", api_token=secrets.token_hex(24),
                   extra_config=TEST_HUB_CONFIG + 'c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": "5"}\n')
    hub.start()
    hub.network = centre_entry(yaml_doc_at(path), "beta")["network"]
    api = HubAPI(hub)
    for user in TEST_USERS:
        api.post(f"/users/{user}")
    yield hub
    hub.stop()


def yaml_doc(centres) -> dict:
    return yaml_doc_at(centres.federation_file)


def yaml_doc_at(path) -> dict:
    import yaml
    return yaml.safe_load(Path(path).read_text())


def connect_from_node(centres, host: str, port: int) -> int:
    """errno of a TCP connect made on beta's compute node (0: connected)."""
    probe = (f"import socket; s = socket.socket(); s.settimeout(3); "
             f"print(s.connect_ex(({host!r}, {port})))")
    out = subprocess.run(centres.centres["beta"].network.in_node([sys.executable, "-c", probe]),
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def job_env(user: str, centre: str = "beta") -> dict[str, str]:
    """The environment of the user's notebook server at ``centre`` (as its process sees it)."""
    for pid in subprocess.run(["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True,
                              text=True).stdout.split():
        env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
        if env.get("FEDHUB_CENTRE") == centre:
            return env
    raise AssertionError(f"no notebook server of {user} at {centre}")


def test_the_compute_node_cannot_reach_the_hub_except_through_the_login_node(tunnel_hub, centres):
    network = centres.centres["beta"].network
    for port in (tunnel_hub.hub_port, tunnel_hub.public_port):
        # no route to the hub's machine, and the node's own loopback is not the hub's
        assert connect_from_node(centres, network.hub_side, port) == errno.ENETUNREACH
        assert connect_from_node(centres, "127.0.0.1", port) == errno.ECONNREFUSED
    # the return path opens when the hub first starts a server there (the next test), not before
    assert connect_from_node(centres, network.login_inner_address, tunnel_hub.network["hub_api_port"]) \
        == errno.ECONNREFUSED


def test_a_server_behind_the_login_node_is_reached_both_ways_and_survives_drops_and_restarts(tunnel_hub, centres):
    api = HubAPI(tunnel_hub)
    network, ports = centres.centres["beta"].network, tunnel_hub.network
    r = api.spawn(U1, {"centre": "beta", "cores": 1, "walltime": "00:10:00"})
    assert r.status_code in (201, 202), r.text
    try:
        server = api.wait_ready(U1, 90)
        tunnel = server["state"]["tunnel"]
        # the server reported its port through the login node's forward, and the proxy reaches
        # the server through the hub's forward on its loopback
        assert tunnel["node"] == network.node_address
        # (TLS: the hub's internal SSL; the quota service too is reached through the hub's API)
        api_url = f"https://{network.login_inner_address}:{ports['hub_api_port']}/hub/api"
        assert job_env(U1)["JUPYTERHUB_API_URL"] == api_url
        assert job_env(U1)["FEDHUB_QUOTA_URL"] == api_url + "/fedhub/quota/"
        assert port_open(tunnel["local_port"]) and tunnel["local_port"] != tunnel["port"]
        assert api.through_proxy(U1).status_code == 200
        # the node reaches the hub's API only at the login node's inner address
        assert connect_from_node(centres, network.login_inner_address, ports["hub_api_port"]) == 0
        # the lab's allocation figures come from the hub's quota service through the login node
        token = api.post(f"/users/{U1}/tokens", json={"note": "tunnel test"}).json()["token"]
        envelope = api.through_proxy(U1, "fedhub/api/quota", token=token).json()
        assert envelope["available"] and envelope["centre"] == "beta", envelope
        assert [c["centre"] for c in envelope["quota"]["centres"]] == ["alpha"]
        # activity travels back too: a request to the lab shows in the hub's record within seconds
        before = api.server(U1)["last_activity"]
        time.sleep(1)
        assert api.through_proxy(U1, "api/kernels").status_code == 200
        wait_for(lambda: api.server(U1)["last_activity"] > before, 30,
                 "the server's activity to reach the hub through the login node", 1)

        # the operator's view: each centre's network mode and whether the hub's connection opens
        out = subprocess.run([sys.executable, "-m", "fedhub.cli", "centres", "-f", str(tunnel_hub.federation_file),
                              "--json"], capture_output=True, text=True, timeout=120)
        rows = {r["id"]: r for r in json.loads(out.stdout)["centres"]}
        assert rows["beta"]["network"] == {"mode": "tunnel", "login_node_address": network.login_inner_address}
        assert rows["beta"]["connection"] == "connected"
        assert rows["impostor"]["connection"].startswith("not connected: Host key verification failed")

        # the hub's connection to the login node drops: it comes back with its forwards, by itself
        masters = [pid for args, pid in tunnel_hub.service_pids().items() if args.startswith("ssh ") and " -M " in args]
        assert masters, tunnel_hub.service_pids()
        for pid in masters:
            os.kill(pid, signal.SIGKILL)
        dropped = time.monotonic()
        wait_for(lambda: api.through_proxy(U1).status_code == 200, 20, "the lab to answer again after the drop", 0.5)
        assert time.monotonic() - dropped < 15
        assert connect_from_node(centres, network.login_inner_address, ports["hub_api_port"]) == 0

        # a hub restart restores the forwards of the running server
        tunnel_hub.restart()
        wait_for(lambda: api.through_proxy(U1).status_code == 200, 30, "the lab to answer after a hub restart", 0.5)
    finally:
        api.stop(U1)
    # stopping leaves nothing: no job, no forward
    wait_for(lambda: live_jobs(centres, "beta", U1) == [], 30, "the job to end")
    assert not port_open(tunnel["local_port"])


@pytest.mark.parametrize("centre,message", [
    ("blocked", "Blocked's login node did not open 10.20."),
    ("impostor", "Impostor's login node: 10.30."),
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
        assert "port is free, or change network.hub_api_port for centre blocked" in last
    wait_for(lambda: api.server(U1) is None, 30, "the failed spawn to leave no record")
    assert live_jobs(centres, "beta", U1) == []
