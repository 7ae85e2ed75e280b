"""What private traffic costs: the same federation, two hubs side by side in one run, one with
FedHub's protection (internal SSL between hub, proxy, servers and launchers; CurveZMQ kernel
channels) and one without (``c.JupyterHub.internal_ssl = False``: plain HTTP and plain ZeroMQ,
as before issue 22). Measured alternately, so both see the same machine:

  spawn   POST /hub/api/users/<u>/server at alpha -> the server answers through the proxy
  rtt     execute_request "1+1" -> execute_reply with a kernel at the firewalled beta, through
          the proxy, the server's websocket and the hub's relays (p50, p99)
  move    a kernel beside the server holding a 100 MB ndarray, moved to beta (seconds to switched)

Goals: spawn protected/plain <= 1.05 (medians); rtt <= 1.1 at p50 and p99; move <= 1.1.

    .venv/bin/python benchmarks/private_traffic.py [--spawns 5] [--executes 500] [--moves 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
from pathlib import Path

import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import LocalFederation  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from kernel_latency import Lab, centres, percentile, round_trips  # noqa: E402
from kernel_move import execute, move  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV, HubRoute  # noqa: E402

USERS = {"protected": "fhbench", "plain": "fhbench2"}
PLAIN_HUB_API_PORT = 8082
OPTIONS = {"centre": "alpha", "partition": "cpu", "cores": 1, "memory": "2G", "walltime": "02:00:00"}


class Side:
    """One hub and its user's server at alpha."""

    def __init__(self, fed: LocalFederation, label: str):
        self.label, self.user = label, USERS[label]
        extra = 'c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}\n'
        if label == "plain":
            extra += "c.JupyterHub.internal_ssl = False\n"
        federation_file = fed.federation_file
        if label == "plain":  # two hubs cannot both hold beta's return forward on one login-node port
            document = fed.federation_document()
            beta = next(c for c in document["centres"] if c["id"] == "beta")
            beta["network"]["hub_api_port"] = PLAIN_HUB_API_PORT
            federation_file = fed.root / "federation-plain.yaml"
            federation_file.write_text(yaml.safe_dump(document, sort_keys=False))
        self.hub = LocalHub(federation_file, fed.root / f"hub-{label}", config_file=HUB_CONFIG,
                            api_token=secrets.token_hex(20), extra_config=extra)
        self.route = HubRoute(self.hub, OPTIONS, user=self.user)

    def start_hub(self) -> None:
        self.hub.start()
        self.route.setup()

    def spawn(self) -> float:
        return self.route.start()

    def stop_server(self, fed: LocalFederation) -> None:
        self.route.stop(fed.centres["alpha"])

    def lab(self) -> Lab:
        token = requests.post(f"{self.hub.url}/hub/api/users/{self.user}/tokens", headers=self.route.headers,
                              json={"note": "bench"}, timeout=30).json()["token"]
        return Lab(self.hub, token, self.user)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spawns", type=int, default=5)
    parser.add_argument("--executes", type=int, default=500)
    parser.add_argument("--moves", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts Slurm centres, network namespaces and runs jobs as test users)")
    spawns: dict[str, list[float]] = {"protected": [], "plain": []}
    rtt: dict[str, list[float]] = {"protected": [], "plain": []}
    moves: dict[str, list[float]] = {"protected": [], "plain": []}
    with LocalFederation(centres(), singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser",
                         users=list(USERS.values())) as fed:
        sides = {label: Side(fed, label) for label in USERS}
        try:
            for side in sides.values():
                side.start_hub()
            for side in sides.values():  # warm-up: imports, certificates, the ssh master
                side.spawn()
                side.stop_server(fed)
            for i in range(args.spawns):
                for label, side in sides.items():
                    spawns[label].append(side.spawn())
                    side.stop_server(fed)
                print(f"spawn {i + 1}: " + "  ".join(f"{k}={v[-1]:.2f}s" for k, v in spawns.items()), flush=True)
            for side in sides.values():
                side.spawn()
            labs = {label: side.lab() for label, side in sides.items()}
            kernels = {label: lab.start("fedhub-beta") for label, lab in labs.items()}
            for i in range(max(1, args.executes // 50)):  # alternate in blocks of 50
                for label, lab in labs.items():
                    got = asyncio.run(round_trips(lab, {label: kernels[label]}, 50))
                    rtt[label] += got[label]
            for label, lab in labs.items():
                lab.stop(kernels[label])
            for i in range(args.moves):
                for label, lab in labs.items():
                    source = lab.start("python3")
                    execute(lab, source, f"import numpy as np\nstate = np.random.default_rng(1)"
                                         f".random({args.mb} * 1024 * 1024 // 8)")
                    m = move(lab, source)
                    moves[label].append(m["seconds"])
                    lab.stop(m["new_kernel_id"])
                print(f"move {i + 1}: " + "  ".join(f"{k}={v[-1]:.2f}s" for k, v in moves.items()), flush=True)
            for side in sides.values():
                side.stop_server(fed)
        finally:
            for side in sides.values():
                side.hub.stop()
    print("\n| measure | protected | plain | ratio | goal |\n|---|---|---|---|---|")
    s = {k: statistics.median(v) for k, v in spawns.items()}
    print(f"| spawn to ready at alpha, median of {args.spawns} | {s['protected']:.2f} s | {s['plain']:.2f} s | "
          f"{s['protected'] / s['plain']:.2f} | <= 1.05 |")
    for p in (50, 99):
        a, b = percentile(rtt["protected"], p), percentile(rtt["plain"], p)
        print(f"| execute round trip, kernel at beta, p{p} of {len(rtt['plain'])} | {a:.2f} ms | {b:.2f} ms | "
              f"{a / b:.2f} | <= 1.1 |")
    m = {k: statistics.median(v) for k, v in moves.items()}
    print(f"| move of a {args.mb} MB kernel alpha -> beta, median of {args.moves} | {m['protected']:.2f} s | "
          f"{m['plain']:.2f} s | {m['protected'] / m['plain']:.2f} | <= 1.1 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
