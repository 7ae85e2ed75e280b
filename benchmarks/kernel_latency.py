"""A kernel at another centre against a local one, in one run, through the hub's proxy and the
notebook server's websocket, as the lab talks to kernels. The server runs at a local centre
(alpha); the remote kernel runs at a firewalled one (beta: compute node behind its login node).

  start  (a) POST /api/kernels {"name": "fedhub-beta"} -> first kernel_info_reply on the websocket
         (b) the same for the server's local "python3"
         (c) a bare sbatch at beta to RUNNING (squeue polled every 50 ms), no kernel at all
  rtt    execute_request "1+1" -> execute_reply, remote and local kernels interleaved

Goals: a <= b + c + 1 s (medians); remote/local round trip <= 1.5 at p50 and p99.

    .venv/bin/python benchmarks/kernel_latency.py [--starts 5] [--executes 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV, HubRoute  # noqa: E402

USER = "fhbench"


def centres() -> list[CentreSpec]:
    def parts():
        return [PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)]
    return [CentreSpec("alpha", "Alpha", cpus=4, memory_mb=8192, partitions=parts()),
            CentreSpec("beta", "Beta", cpus=4, memory_mb=8192, route="ssh", firewalled=True, partitions=parts())]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def message(msg_type: str, content: dict, session: str) -> str:
    return json.dumps({"header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": USER,
                                  "session": session, "date": datetime.now(timezone.utc).isoformat(),
                                  "version": "5.3"},
                       "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"})


class KernelSocket:
    """A kernel's websocket through the proxy, as JupyterLab opens it."""

    def __init__(self, hub: LocalHub, token: str, kernel_id: str, user: str = USER):
        self.url = f"{hub.url.replace('http', 'ws')}/user/{user}/api/kernels/{kernel_id}/channels"
        self.token = token
        self.session = uuid.uuid4().hex

    async def __aenter__(self):
        self.ws = await websocket_connect(HTTPRequest(self.url, headers={"Authorization": f"token {self.token}"}))
        self.ws.protocol.set_nodelay(True)  # as browsers do: no Nagle delay on small frames
        return self

    async def __aexit__(self, *exc):
        self.ws.close()

    async def request(self, msg_type: str, content: dict, reply_type: str) -> dict:
        await self.ws.write_message(message(msg_type, content, self.session))
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                raise RuntimeError("the kernel's websocket closed")
            msg = json.loads(raw)
            if msg.get("msg_type") == reply_type or msg.get("header", {}).get("msg_type") == reply_type:
                return msg


class Lab:
    def __init__(self, hub: LocalHub, token: str, user: str = USER):
        self.hub, self.token, self.user = hub, token, user
        self.headers = {"Authorization": f"token {token}"}

    def start(self, name: str) -> str:
        r = requests.post(f"{self.hub.url}/user/{self.user}/api/kernels", headers=self.headers, json={"name": name},
                          timeout=300)
        r.raise_for_status()
        return r.json()["id"]

    def stop(self, kernel_id: str) -> None:
        requests.delete(f"{self.hub.url}/user/{self.user}/api/kernels/{kernel_id}", headers=self.headers, timeout=120)

    async def time_start(self, name: str) -> tuple[float, str]:
        started = time.perf_counter()
        kernel_id = await asyncio.to_thread(self.start, name)
        async with KernelSocket(self.hub, self.token, kernel_id, self.user) as ws:
            await ws.request("kernel_info_request", {}, "kernel_info_reply")
        return time.perf_counter() - started, kernel_id


@contextlib.contextmanager
def server_at_alpha(cores: int = 1, memory: str = "2G"):
    """The benchmark's federation, a hub, and the user's server at alpha: yields (federation, lab)."""
    with LocalFederation(centres(), singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=[USER]) as fed:
        hub = LocalHub(fed.federation_file, fed.root / "hub", config_file=HUB_CONFIG, api_token=secrets.token_hex(20),
                       extra_config='c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}')
        try:
            hub.start()
            server = HubRoute(hub, {"centre": "alpha", "partition": "cpu", "cores": cores, "memory": memory,
                                    "walltime": "02:00:00"}, user=USER)
            server.setup()
            server.start()
            token = requests.post(f"{hub.url}/hub/api/users/{USER}/tokens", headers=server.headers,
                                  json={"note": "bench"}, timeout=30).json()["token"]
            yield fed, Lab(hub, token)
            server.stop(fed.centres["alpha"])
        finally:
            hub.stop()


def sbatch_to_running(fed: LocalFederation) -> float:
    beta = fed.centres["beta"]
    started = time.perf_counter()
    job = beta.run(["runuser", "-u", USER, "--", "sbatch", "--parsable", "--time=5", "--output=/dev/null",
                    "--wrap", "sleep 300"], check=True, cwd="/").stdout.strip()
    while beta.run(["squeue", "-h", "-j", job, "-o", "%T"]).stdout.strip() != "RUNNING":
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    beta.run(["scancel", job])
    while beta.run(["squeue", "-h", "-j", job, "-o", "%T"]).stdout.strip():
        time.sleep(0.2)
    return elapsed


async def round_trips(lab: Lab, kernels: dict[str, str], count: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in kernels}
    sockets = {name: KernelSocket(lab.hub, lab.token, kid, lab.user) for name, kid in kernels.items()}
    for ws in sockets.values():
        await ws.__aenter__()
    try:
        for ws in sockets.values():  # warm-up
            for _ in range(20):
                await ws.request("execute_request", {"code": "1+1", "silent": False}, "execute_reply")
        for i in range(count):
            for name, ws in sockets.items():
                started = time.perf_counter()
                await ws.request("execute_request", {"code": "1+1", "silent": False, "store_history": False},
                                 "execute_reply")
                times[name].append((time.perf_counter() - started) * 1000)
    finally:
        for ws in sockets.values():
            await ws.__aexit__()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--executes", type=int, default=1000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts Slurm centres, network namespaces and runs jobs as a test user)")
    starts: dict[str, list[float]] = {"remote": [], "local": [], "sbatch": []}
    with server_at_alpha() as (fed, lab):
        for name in ("fedhub-beta", "python3"):  # warm-up: imports, the ssh master, the return path
            lab.stop(asyncio.run(lab.time_start(name))[1])
        sbatch_to_running(fed)
        for i in range(args.starts):
            for label, name in (("remote", "fedhub-beta"), ("local", "python3")):
                elapsed, kernel_id = asyncio.run(lab.time_start(name))
                starts[label].append(elapsed)
                lab.stop(kernel_id)
            starts["sbatch"].append(sbatch_to_running(fed))
            print(f"start {i + 1}: " + "  ".join(f"{k}={v[-1]:.2f}s" for k, v in starts.items()), flush=True)
        kernels = {"remote": lab.start("fedhub-beta"), "local": lab.start("python3")}
        rtt = asyncio.run(round_trips(lab, kernels, args.executes))
        for kernel_id in kernels.values():
            lab.stop(kernel_id)
    a, b, c = (statistics.median(starts[k]) for k in ("remote", "local", "sbatch"))
    print(f"\nkernel start to first kernel_info_reply, median of {args.starts} (interleaved)")
    for key, label in (("remote", "(a) fedhub-beta at the firewalled centre"), ("local", "(b) local python3"),
                       ("sbatch", "(c) bare sbatch at beta to RUNNING")):
        print(f"  {label:42s} {statistics.median(starts[key]):6.2f} s  (min {min(starts[key]):.2f}, "
              f"max {max(starts[key]):.2f})")
    print(f"  a - (b + c) = {a - (b + c):+.2f} s   (goal <= +1 s)")
    print(f"\nexecute '1+1' round trip through the proxy and the server's websocket, {args.executes} each")
    for name in ("remote", "local"):
        print(f"  {name:7s} p50 {percentile(rtt[name], 50):6.2f} ms   p99 {percentile(rtt[name], 99):6.2f} ms")
    for p in (50, 99):
        print(f"  remote/local p{p} = {percentile(rtt['remote'], p) / percentile(rtt['local'], p):.2f}   (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
