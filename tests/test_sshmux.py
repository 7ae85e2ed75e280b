"""The hub's persistent ssh connections to a real login node (sshd on loopback): commands run as
sessions over one master per login, the user's variables still travel, a dropped master is
re-established, a refused login is said, and closing leaves no ssh process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import pytest

from helpers.testbed import TEST_USERS
from fedhub.federation import load_federation
from fedhub.slurm.client import SlurmClient
from fedhub.slurm.routes import LoginRefused, SshRoute
from fedhub.slurm.sshmux import SshMasters

USER = TEST_USERS[2]


def masters_running(master) -> bool:
    out = subprocess.run(["ssh", "-O", "check", "-o", f"ControlPath={master.socket}", "x"],
                         capture_output=True, text=True)
    return out.returncode == 0 and "Master running" in out.stderr


def test_commands_run_over_one_master_per_login_and_survive_its_loss(centres):
    beta = load_federation(centres.federation_file).centre("beta")
    route = SshRoute(beta.scheduler)

    async def scenario():
        try:
            outputs = []
            for _ in range(5):
                result = await route.run(["printenv", "JUPYTERHUB_API_TOKEN"], user=USER,
                                         env={"JUPYTERHUB_API_TOKEN": "sent-through-the-master"})
                outputs.append(result.stdout.strip())
            master = SshMasters.get(beta.scheduler, USER)
            first = (master.starts, masters_running(master), master.proc.pid)
            nodes = await SlurmClient(beta).nodes()  # a centre-wide query: the query login's own master
            query = SshMasters.get(beta.scheduler, beta.scheduler.query_user)
            os.kill(master.proc.pid, signal.SIGKILL)  # the connection drops
            await asyncio.sleep(0.2)
            again = await route.run(["printenv", "JUPYTERHUB_API_TOKEN"], user=USER,
                                    env={"JUPYTERHUB_API_TOKEN": "after-the-drop"})
            second = (master.starts, masters_running(master))
            return outputs, first, nodes, query.alive, again.stdout.strip(), second
        finally:
            await SshMasters.close_all()

    outputs, first, nodes, query_alive, again, second = asyncio.run(scenario())
    assert outputs == ["sent-through-the-master"] * 5  # SendEnv works over the master
    assert first[:2] == (1, True)  # five commands, one connection
    assert [n.name for n in nodes] == ["beta-n1"] and query_alive
    assert again == "after-the-drop" and second == (2, True)  # re-established at the next command
    leftover = subprocess.run(["pgrep", "-f", f"ControlPath={SshMasters.get(beta.scheduler, USER).socket}"],
                              capture_output=True, text=True).stdout
    assert leftover == ""  # nothing left behind


def test_a_login_the_login_node_refuses_is_said_as_such(centres):
    beta = load_federation(centres.federation_file).centre("beta")

    async def scenario():
        try:
            await SshRoute(beta.scheduler).run(["true"], user="zed1")
        finally:
            await SshMasters.close_all()

    with pytest.raises(LoginRefused, match="login 'zed1' at .* is not used: there is no such account at the centre"):
        asyncio.run(scenario())


def test_a_forward_over_the_connection_is_restored_when_the_connection_drops(centres, tmp_path):
    """A port on the hub's side reaches a port beyond the login node; when the connection drops,
    the hub re-establishes it and the forward answers again within seconds, with no command."""
    import socket
    import sys
    import time

    import requests

    from fedhub_testbed.centres import free_port
    from fedhub.slurm.sshmux import ForwardError

    beta = load_federation(centres.federation_file).centre("beta")
    target, local = free_port(), free_port()
    (tmp_path / "index.html").write_text("beyond the login node")
    network = centres.centres["beta"].network  # the server runs on beta's compute node, behind the login node
    server = subprocess.Popen(network.in_node([sys.executable, "-m", "http.server", str(target), "--bind",
                                               network.node_address]),
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answer() -> str | None:
        try:
            return requests.get(f"http://127.0.0.1:{local}/index.html", timeout=2).text
        except requests.RequestException:
            return None

    async def scenario():
        master = SshMasters.get(beta.scheduler, beta.scheduler.query_user)
        spec = f"127.0.0.1:{local}:{network.node_address}:{target}"
        try:
            await master.add_forward("L", spec)
            before = master.starts  # the master object outlives earlier tests' connections
            first = None
            for _ in range(50):  # the http server on the node may still be starting
                first = await asyncio.to_thread(answer)
                if first:
                    break
                await asyncio.sleep(0.1)
            os.kill(master.proc.pid, signal.SIGKILL)  # the connection drops
            deadline, again = time.monotonic() + 15, None
            while time.monotonic() < deadline and again is None:
                await asyncio.sleep(0.2)
                again = await asyncio.to_thread(answer)
            restored_after = 15 - (deadline - time.monotonic())
            starts = master.starts - before
            taken = socket.create_server(("127.0.0.1", 0))  # a port already in use on the hub's side
            busy = taken.getsockname()[1]
            with taken, pytest.raises(ForwardError, match=f"port {busy} on the hub.s host is held by another process"):
                await master.add_forward("L", f"127.0.0.1:{busy}:{network.node_address}:1")
            await master.cancel_forward("L", spec)
            with socket.socket() as s:
                closed = s.connect_ex(("127.0.0.1", local)) != 0
            return first, again, restored_after, starts, closed
        finally:
            await SshMasters.close_all()

    try:
        first, again, restored_after, starts, closed = asyncio.run(scenario())
    finally:
        server.terminate()
    assert first == "beyond the login node"
    assert again == "beyond the login node" and restored_after < 10, restored_after
    assert starts == 1 and closed  # one drop, one new connection; the cancelled port is closed
