"""Runs inside a kernel's Slurm job: starts ipykernel on this node and tells the hub its ports.

The kernel binds its own ports here (ipykernel picks free ones when the connection file says 0
and writes them back), on this node's address from the federation (never all interfaces), so no
port is chosen on one host and bound on another. Its channels are CurveZMQ. The report token
and the job's TLS files come from the job's environment and are removed from it before the
kernel starts; the kernel's keys (HMAC, CurveZMQ) are fetched from the hub over TLS, once the
hub's certificate was checked against the hub's CA, and go only into a 0600 connection file in
a 0700 directory. None of them reaches argv, the job script or its output. When the kernel exits, the launcher tells the hub and waits for its
word: start it again (a restart keeps the job, its ports and its relay) or end the job.

    python -m fedhub_lab.launcher      (the job script's only command)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PREFIX = "JUPYTERHUB_FEDHUB_KERNEL_"
# The protocol this launcher speaks with the hub (fedhub.kernels.LAUNCHER_PROTOCOL): named in every
# request; a hub that speaks another refuses with 400 and says what to install.
PROTOCOL = 1
PROTOCOL_HEADER = "FedHub-Launcher-Protocol"
PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def log(message: str) -> None:
    print(f"[fedhub kernel launcher {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def settings() -> dict:
    """The launcher's settings, taken out of the environment (the kernel must not inherit them)."""
    values = {name: os.environ.pop(PREFIX + name, "") for name in (
        "ID", "TOKEN", "URL", "NODES", "SSL_KEYFILE", "SSL_CERTFILE", "SSL_CAFILE")}
    missing = [PREFIX + k for k in ("ID", "TOKEN", "URL") if not values[k]]
    if missing:
        sys.exit(f"fedhub kernel launcher: {', '.join(missing)} not set; this runs only as FedHub's kernel job")
    for name in list(os.environ):
        if name.startswith(("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")):
            os.environ.pop(name)  # not the kernel's business either
    return values


def bind_address(nodes_json: str) -> str:
    """This node's address as the federation names it; else what its hostname resolves to."""
    node = os.environ.get("SLURMD_NODENAME", "")
    try:
        nodes = json.loads(nodes_json or "{}")
    except ValueError:
        nodes = {}
    if node in nodes:
        return nodes[node]
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def hub_tls(conf: dict) -> ssl.SSLContext | None:
    """JupyterHub's internal SSL: the hub asks for this job's certificate, and the launcher talks
    only to a hub whose certificate chains to the hub's CA (a squatter on a login node's forwarded
    port gets no token)."""
    if not conf.get("SSL_KEYFILE"):
        if conf["URL"].startswith("https:"):
            sys.exit("fedhub kernel launcher: the hub's API is https but the job has no certificate")
        return None
    context = ssl.create_default_context(cafile=conf["SSL_CAFILE"])
    context.load_cert_chain(conf["SSL_CERTFILE"], conf["SSL_KEYFILE"])
    return context


def call_hub(conf: dict, method: str, body: dict | None = None, timeout: float = 10, path: str = "") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(conf["URL"] + path, data=data, method=method,
                                     headers={"Authorization": f"kernel {conf['TOKEN']}",
                                              PROTOCOL_HEADER: str(PROTOCOL),
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout, context=conf.get("tls")) as response:
        return json.loads(response.read() or b"{}")


def hub_message(error: urllib.error.HTTPError) -> str:
    """What the hub said when it refused (JupyterHub's {"message": ...}), for the job's log."""
    try:
        return str(json.loads(error.read() or b"{}").get("message", ""))[:500]
    except (OSError, ValueError, AttributeError):
        return ""


def fetch_keys(conf: dict, patience: float = 600) -> dict:
    """The kernel's HMAC key and CurveZMQ pair, from the hub. While the hub restarts, or while
    something that is not the hub answers at its address (its certificate fails the check
    against the hub's CA: the request, and the token, are never sent), try again for a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            keys = call_hub(conf, "GET", path="/keys")
            if keys.get("key"):  # and the CurveZMQ pair, unless the hub runs without internal SSL
                return keys
            raise RuntimeError("the hub's answer holds no keys")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"the hub did not hand out the kernel's keys ({e.code} {e.reason}: "
                               f"{hub_message(e)})") from None
        except OSError as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ssl.SSLCertVerificationError) or isinstance(e, ssl.SSLCertVerificationError):
                log(f"refusing {conf['URL'].split('/hub/')[0]}: its certificate failed the check against the "
                    f"hub's CA ({getattr(reason, 'verify_message', reason)}); nothing was sent. Retrying")
            else:
                log(f"could not reach the hub for the kernel's keys yet ({reason}); retrying")
        if time.monotonic() > deadline:
            raise RuntimeError("the hub did not hand out the kernel's keys in time")
        time.sleep(2)


def start_kernel(connection_file: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", connection_file],
                            stdin=subprocess.DEVNULL)


def wait_for_ports(path: str, kernel: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                info = json.load(f)
            if all(info.get(p) for p in PORTS):
                return info
        except (OSError, ValueError):
            pass
        if kernel.poll() is not None:
            raise RuntimeError(f"the kernel exited with {kernel.returncode} before it listened")
        time.sleep(0.05)
    raise RuntimeError(f"the kernel did not listen within {timeout:.0f} s")


def report(conf: dict, info: dict) -> None:
    body = {"node": os.environ.get("SLURMD_NODENAME", socket.gethostname()), "ports": {p: info[p] for p in PORTS}}
    for attempt in range(30):  # the hub may be restarting: keep trying for a minute
        try:
            call_hub(conf, "POST", body)
            return
        except OSError as e:
            log(f"could not report the ports to the hub yet ({e}); retrying")
            time.sleep(2)
    raise RuntimeError("the hub did not take the kernel's ports")


def next_action(conf: dict, code: int, patience: float = 120) -> str:
    """Tell the hub the kernel exited; wait (bounded) for it to say restart or exit."""
    deadline, body = time.monotonic() + patience, {"exited": code}
    while time.monotonic() < deadline:
        try:
            action = call_hub(conf, "POST" if body else "GET", body).get("action", "exit")
            body = None
            if action != "wait":
                return action
        except OSError as e:
            log(f"could not reach the hub ({e}); retrying")
        time.sleep(0.5)
    return "exit"


def main() -> int:
    conf = settings()
    conf["tls"] = hub_tls(conf)
    keys = fetch_keys(conf)
    workdir = tempfile.mkdtemp(prefix="fedhub-kernel-")  # 0700: only this user reads the key
    path = os.path.join(workdir, "connection.json")
    ip = bind_address(conf["NODES"])
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        json.dump({"ip": ip, "transport": "tcp", "signature_scheme": "hmac-sha256", "key": keys["key"],
                   **{k: keys[k] for k in ("curve_publickey", "curve_secretkey") if keys.get(k)},
                   "kernel_name": "python3", **{p: 0 for p in PORTS}}, f)
    del keys
    kernel: subprocess.Popen | None = None

    def end(signum, frame):  # scancel, walltime: end the kernel with the job
        if kernel is not None and kernel.poll() is None:
            kernel.terminate()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, end)
    try:
        while True:
            kernel = start_kernel(path)
            info = wait_for_ports(path, kernel)
            log(f"kernel {conf['ID']} listening on {ip} (shell {info['shell_port']})")
            report(conf, info)
            code = kernel.wait()
            action = next_action(conf, code)
            log(f"kernel exited with {code}; the hub says {action}")
            if action != "restart":
                return code
    finally:
        if kernel is not None and kernel.poll() is None:
            kernel.terminate()
        try:
            os.unlink(path)
            os.rmdir(workdir)
        except OSError:
            pass


def run() -> None:
    """The job's entry point (``python -m fedhub_lab.launcher``)."""
    try:
        sys.exit(main())
    except RuntimeError as e:  # said in the job's log, where an operator looks
        log(f"giving up: {e}")
        sys.exit(1)
