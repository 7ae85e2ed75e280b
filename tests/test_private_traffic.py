"""Nobody but a kernel's owner reads its channels, nobody posing as the hub gets a token, and
nothing secret crosses a wire in clear: tried as bob, a second real Unix user of the machine
(alpha's compute node is this machine) and of beta's login node (its network namespace), with
alice's real server, kernels and Slurm jobs.

- bob attaches a ZeroMQ SUB socket to every TCP port listening on the node and on beta's login
  node (found with ``ss`` as root: the kernels, the relays) and to the kernels' IPC sockets while
  alice's kernels print a secret: he receives nothing;
- while the hub is stopped, bob takes beta's login-node port where jobs reach the hub and answers
  as a fake hub: the hub says it could not bind its forward (log, ``fedhub centres``), alice's
  kernel job at beta refuses the fake (its certificate is not of the hub's CA) and sends it
  nothing; once bob's fake is gone the hub binds again and the kernel starts, with no user action;
- ``tcpdump`` on the loopback and the namespace links while alice spawns, starts kernels, runs
  cells and moves a kernel: no token, kernel key, code, output or variable in clear.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers.testbed import JOBENV, TEST_USERS, HubAPI, blocker, live_jobs, slurm, wait_for
from fedhub_testbed.centres import TUNNEL_HUB_API_PORT
from helpers.moves import Server

ALICE, BOB = TEST_USERS[0], TEST_USERS[1]
REPO = Path(__file__).resolve().parent.parent

# Run as bob: SUB sockets on every endpoint given, for a while; prints what arrived.
SPY = r"""
import json, sys, time, zmq
endpoints, seconds = json.loads(sys.argv[1]), float(sys.argv[2])
context, poller, connected = zmq.Context(), zmq.Poller(), 0
for endpoint in endpoints:
    s = context.socket(zmq.SUB)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
    except zmq.ZMQError:
        continue
    poller.register(s, zmq.POLLIN)
    connected += 1
print("listening", flush=True)
got, end = [], time.time() + seconds
while time.time() < end:
    for s, _ in poller.poll(200):
        got.append(b"".join(s.recv_multipart()).decode("utf-8", "replace"))
print(json.dumps({"connected": connected, "received": got}), flush=True)
"""

# Run as bob on beta's login node: a fake hub with a certificate of its own that lets anyone
# into any server, and writes down every connection and every request it gets.
FAKE_HUB = r"""
import http.server, json, ssl, sys
host, port, cert, key, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def note(line):
    with open(log, "a") as f:
        f.write(line + "\n")
class Hub(http.server.BaseHTTPRequestHandler):
    def answer(self):
        note(f"REQUEST {self.command} {self.path} {dict(self.headers)}")
        body = json.dumps({"kind": "user", "name": "anyone", "admin": True, "scopes": ["access:servers"],
                           "key": "x" * 32, "curve_secretkey": "x", "curve_publickey": "x",
                           "action": "wait"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
class Server(http.server.ThreadingHTTPServer):
    def get_request(self):
        sock, addr = super().get_request()
        note(f"CONNECTION {addr}")
        return sock, addr
server = Server((host, port), Hub)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
# the handshake on first read, so that a connection whose client refuses it is still written down
server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
note("LISTENING")
server.serve_forever()
"""


def as_user(user: str, argv: list[str], netns: str | None = None) -> list[str]:
    wrapped = ["runuser", "-u", user, "--", *argv]
    return ["nsenter", f"--net=/run/netns/{netns}", *wrapped] if netns else wrapped


def tcp_listeners(netns: str | None = None) -> list[tuple[str, int]]:
    """Every TCP port listening in the host's (or a namespace's) network, as root sees them."""
    argv = ["ss", "-H", "-l", "-t", "-n", "-4"]
    out = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", *argv] if netns else argv,
                         capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        local = line.split()[3]
        address, port = local.rsplit(":", 1)
        found.append(("127.0.0.1" if address in ("0.0.0.0", "*") else address.split("%")[0], int(port)))
    return sorted(set(found))


def ipc_sockets_of(user: str) -> list[str]:
    """The ZeroMQ IPC sockets ``user``'s kernels listen on (their paths, as root sees them)."""
    out = subprocess.run(["ss", "-H", "-l", "-x", "-p"], capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        fields = line.split()
        path = next((f for f in fields if f.startswith("/") and "-ipc-" in f), None)
        pids = [int(p.split("=")[1]) for p in line.replace(",", " ").split() if p.startswith("pid=")]
        if path and any(_owner(pid) == user for pid in pids):
            paths.append(path)
    return paths


def _owner(pid: int) -> str:
    try:
        import pwd
        return pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
    except (OSError, KeyError):
        return ""


def spy(endpoints: list[str], seconds: float, netns: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(as_user(BOB, [f"{JOBENV}/bin/python", "-c", SPY, json.dumps(endpoints), str(seconds)],
                                    netns), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "listening", proc.stderr.read()
    return proc


def spied(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def loud_cell(secret: str) -> str:
    """A cell that prints ``secret`` again and again while bob listens."""
    return f"import time\nfor _ in range(25):\n    print({secret!r}, flush=True)\n    time.sleep(0.2)"


@pytest.fixture(scope="module")
def alice(hub):
    api = HubAPI(hub)
    yield api
    if api.server(ALICE):
        api.stop(ALICE)


def start_server(hub, api: HubAPI, centre: str) -> Server:
    if api.server(ALICE):
        api.stop(ALICE)
    r = api.spawn(ALICE, {"centre": centre, "cores": 1, "memory": "2G", "walltime": "00:30:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(ALICE, 120)
    token = api.post(f"/users/{ALICE}/tokens", json={"note": "private traffic tests"}).json()["token"]
    return Server(hub, ALICE, token)


def test_bob_on_alices_node_reads_nothing_of_her_kernels(hub, alice, centres):
    """alpha's compute node is this machine: alice's kernel beside her server, her kernel at beta
    (relayed to this host by the hub) and bob's processes share it."""
    server = start_server(hub, alice, "alpha")
    local, remote = server.start_kernel("python3"), server.start_kernel("fedhub-beta")
    server.run(local, "1")
    server.run(remote, "1")
    endpoints = [f"tcp://{a}:{p}" for a, p in tcp_listeners()] + [f"ipc://{p}" for p in ipc_sockets_of(ALICE)]
    assert any(e.startswith("tcp://") for e in endpoints)
    for kernel in (local, remote):
        secret = f"alice-secret-{os.urandom(6).hex()}"
        listening = spy(endpoints, 8)
        assert secret in server.run(kernel, loud_cell(secret))["stdout"]  # alice sees her output
        seen = spied(listening)
        assert seen["connected"] >= len([e for e in endpoints if e.startswith("tcp://")])
        assert not any(secret in m for m in seen["received"]), seen["received"][:3]
        assert seen["received"] == [], seen["received"][:3]
    # the kernels beside the server speak over IPC in the server's private runtime directory
    runtime = Path(f"~{ALICE}").expanduser() / ".local/share/jupyter/runtime"
    assert runtime.stat().st_mode & 0o077 == 0
    for kernel in (local, remote):
        assert server.call("DELETE", f"api/kernels/{kernel}").status_code == 204


def test_bob_on_betas_login_node_reads_nothing_of_a_kernel_relayed_through_it(hub, alice, centres):
    """alice's server at beta (behind its login node) runs a kernel at gamma: its channels come
    back to her server through forwards on beta's login node, where bob is logged in too, and he
    can reach beta's compute node from there."""
    network = centres.centres["beta"].network
    server = start_server(hub, alice, "beta")
    kernel = server.start_kernel("fedhub-gamma")
    server.run(kernel, "1")
    endpoints = [f"tcp://{a}:{p}" for a, p in tcp_listeners(network.login_ns)]
    endpoints += [f"tcp://{network.node_address}:{p}" for a, p in tcp_listeners(network.node_ns)]
    secret = f"alice-secret-{os.urandom(6).hex()}"
    listening = spy(endpoints, 8, netns=network.login_ns)
    assert secret in server.run(kernel, loud_cell(secret))["stdout"]
    seen = spied(listening)
    assert seen["connected"] == len(endpoints) and len(endpoints) > 5
    assert seen["received"] == [], seen["received"][:3]
    assert server.call("DELETE", f"api/kernels/{kernel}").status_code == 204
    alice.stop(ALICE)


def _centres_json(hub, centres) -> dict:
    r = subprocess.run([str(REPO / ".venv/bin/fedhub"), "centres", "-f", str(hub.federation_file), "--json",
                        "--state-dir", str(hub.state_dir)], capture_output=True, text=True, timeout=120)
    return {c["id"]: c for c in json.loads(r.stdout)["centres"]}


def test_a_fake_hub_on_betas_login_node_gets_no_token_and_the_hub_comes_back_by_itself(hub, alice, centres):
    network = centres.centres["beta"].network
    server = start_server(hub, alice, "alpha")
    kernels = __import__("test_kernels")
    mine = kernels.KernelAPI(hub, ALICE, server.token)
    keys = kernels.KernelKeys()
    full = blocker(centres, "beta", 4, 30)  # alice's kernel waits in beta's queue while the hub is away
    fake = None
    try:
        record = mine.call("POST", "kernels", json={"centre": "beta", "cores": 1, "walltime": "00:10:00",
                                                    **keys.body}).json()
        wait_for(lambda: mine.call("GET", f"kernels/{record['id']}").json()["status"] == "pending", 60,
                 "the kernel to wait in beta's queue")
        hub.stop()
        # bob, logged in on beta's login node, takes the port the hub's forward held
        work = Path(tempfile.mkdtemp(prefix="fedhub-fake-hub-"))
        os.chown(work, *_ids(BOB))
        cert, key, log = work / "hub.crt", work / "hub.key", work / "requests.log"
        subprocess.run(as_user(BOB, ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                     "-subj", f"/CN={network.login_inner_address}", "-addext",
                                     f"subjectAltName=IP:{network.login_inner_address}",
                                     "-keyout", str(key), "-out", str(cert)]), check=True, capture_output=True)
        fake = subprocess.Popen(as_user(BOB, ["/usr/bin/python3", "-c", FAKE_HUB,
                                              network.login_inner_address, str(TUNNEL_HUB_API_PORT), str(cert),
                                              str(key), str(log)], network.login_ns),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_for(lambda: log.exists() and "LISTENING" in log.read_text(), 20, "bob's fake hub to listen")

        hub.start()
        # the hub could not bind its forward back from beta's login node, and says so
        wait_for(lambda: "could not bind" in hub.log_tail(400) or "refused the forward" in hub.log_tail(400), 60,
                 "the hub to log the refused forward")
        refused = wait_for(lambda: _centres_json(hub, centres)["beta"].get("forwards_refused"), 60,
                           "fedhub centres to show the refused forward")
        assert any(f"{network.login_inner_address}:{TUNNEL_HUB_API_PORT}" in f["spec"] for f in refused), refused

        # the kernel's job starts and asks the fake: its launcher refuses the certificate, sends nothing
        job_log = centres.centres["beta"].home_of(ALICE) / ".fedhub" / "jobs" / f"fedhub-kernel-{record['job_id']}.log"
        job_log.unlink(missing_ok=True)  # an earlier run's job of the same number wrote there
        slurm(centres, "beta", "scancel", full)
        wait_for(lambda: job_log.exists() and "certificate failed the check against the hub's CA"
                 in job_log.read_text(), 120, "the launcher to refuse the fake hub")
        seen = log.read_text()
        assert "CONNECTION" in seen and "REQUEST" not in seen, seen[-2000:]

        # bob's fake goes; the hub binds its forward again and the kernel starts, with no user action
        os.killpg(fake.pid, signal.SIGTERM)
        fake.wait(10)
        ready = wait_for(lambda: (lambda r: r if r["status"] == "ready" else None)(
            mine.call("GET", f"kernels/{record['id']}").json()), 120, "the kernel to start after all", 1)
        client = kernels.client_for(ready, keys)
        try:
            assert kernels.run(client, "print(6 * 7)") == "42\n"
        finally:
            client.stop_channels()
        assert not _centres_json(hub, centres)["beta"].get("forwards_refused")
        assert mine.call("DELETE", f"kernels/{record['id']}").status_code == 204
    finally:
        if fake is not None and fake.poll() is None:
            os.killpg(fake.pid, signal.SIGKILL)
        try:
            slurm(centres, "beta", "scancel", full)
        except subprocess.CalledProcessError:
            pass
        if hub.proc is None or hub.proc.poll() is not None:
            hub.start()
    alice.stop(ALICE)
    assert live_jobs(centres, "beta", ALICE) == []


def _ids(user: str) -> tuple[int, int]:
    import pwd
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _capture(argv_prefix: list[str], path: Path, bpf: str) -> subprocess.Popen:
    proc = subprocess.Popen([*argv_prefix, "tcpdump", "-i", "any", "-s", "0", "-U", "-n", "-w", str(path), bpf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: path.exists() or proc.poll() is not None, 20, "tcpdump to start")
    assert proc.poll() is None, proc.stderr.read()
    return proc


def _server_secrets(user: str) -> dict[str, str]:
    """alice's server's API token and its kernels' HMAC keys, as root reads them on the node."""
    pid = subprocess.run(["pgrep", "-u", user, "-f", "jupyterhub-singleuser"], capture_output=True,
                         text=True).stdout.split()[0]
    env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    found = {"the server's API token": env["JUPYTERHUB_API_TOKEN"]}
    runtime = Path(f"~{user}").expanduser() / ".local/share/jupyter/runtime"
    for connection in runtime.glob("kernel-*.json"):
        info = json.loads(connection.read_text())
        found[f"the HMAC key of {connection.name}"] = info["key"]
        if info.get("curve_secretkey"):
            found[f"the CurveZMQ secret key of {connection.name}"] = info["curve_secretkey"]
    return found


def test_no_token_key_code_output_or_variable_crosses_a_wire_in_clear(hub, alice, centres):
    """Captured on every interface of this host (the loopback, the links to beta's login node) and
    of beta's login node (its link to the compute node) while alice spawns at alpha, starts a
    kernel beside her server and one at beta, runs cells and moves a kernel with a variable to
    beta. Left out: the user's own HTTP to the proxy's public port (a deployment puts TLS at its
    ingress), the hub's services and its database on the hub's loopback (the hub calls them there)."""
    network = centres.centres["beta"].network
    work = Path(tempfile.mkdtemp(prefix="fedhub-capture-"))
    own_ports = [hub.public_port, hub.quota_port, hub.classes_port]
    if hub.db_url and urlsplit(hub.db_url).port:  # the hub's database, beside it: the spawner's state
        own_ports.append(urlsplit(hub.db_url).port)
    hub_own = " or ".join(f"port {p}" for p in own_ports)
    captures = [_capture([], work / "host.pcap", f"tcp and not ({hub_own})"),
                _capture(["nsenter", f"--net=/run/netns/{network.login_ns}"], work / "login.pcap", "tcp")]
    marks = {name: f"{name}-{os.urandom(8).hex()}" for name in ("code", "output", "variable")}
    try:
        if alice.server(ALICE):
            alice.stop(ALICE)
        server = start_server(hub, alice, "alpha")
        local, remote = server.start_kernel("python3"), server.start_kernel("fedhub-beta")
        half = len(marks["output"]) // 2
        printed = server.run(remote, f"# {marks['code']}\nprint({marks['output'][:half]!r} + "
                                     f"{marks['output'][half:]!r})")["stdout"]
        assert printed.strip() == marks["output"]
        server.run(local, f"moving = {marks['variable'][:half]!r} + {marks['variable'][half:]!r}")
        secrets_now = _server_secrets(ALICE)
        move = server.move(local, centre="beta", memory="1G")
        done = server.follow(move)
        assert done["status"] == "switched", done
        moved = done["new_kernel_id"]
        assert server.run(moved, "print(moving)")["stdout"].strip() == marks["variable"]
        assert server.run(moved, "import os; print(os.environ['SLURM_CLUSTER_NAME'])")["stdout"].strip() == "beta"
    finally:
        for proc in captures:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    wire = (work / "host.pcap").read_bytes() + (work / "login.pcap").read_bytes()
    assert len(wire) > 100_000, "the capture saw the traffic (TLS to the hub, the kernels' channels)"
    for name, value in {**secrets_now, **marks}.items():
        assert value.encode() not in wire, f"{name} crossed a wire in clear"
    for kernel in server.kernels():
        server.call("DELETE", f"api/kernels/{kernel}")
    alice.stop(ALICE)
    assert live_jobs(centres, "beta", ALICE) == []
