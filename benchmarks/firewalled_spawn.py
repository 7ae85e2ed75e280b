"""A firewalled centre against a local one, in one run, through one real hub and proxy:

  spawn   POST /hub/api/users/u/server -> the server answers through the proxy, at a local centre
          and at a firewalled one (compute node in its own network namespace, reached only through
          its ssh login node; the server reports back through the login node's forward)
  http    GET /user/u/api/status through the proxy, a server running at each centre

Runs are interleaved (local, firewalled, local, ...) so drift hits both alike. Goals: firewalled
spawn / local spawn <= 1.1; HTTP p50 through the tunnel within 2 ms of the local lab's.

    .venv/bin/python benchmarks/firewalled_spawn.py [--runs 7] [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV, HubRoute  # noqa: E402

USERS = {"local": "fhbench", "firewalled": "fhbench2"}


def centres() -> list[CentreSpec]:
    def parts():
        return [PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)]
    return [CentreSpec("local", "Local", cpus=4, memory_mb=8192, partitions=parts()),
            CentreSpec("firewalled", "Firewalled", cpus=4, memory_mb=8192, route="ssh", firewalled=True,
                       partitions=parts())]


class UserRoute(HubRoute):
    def __init__(self, hub: LocalHub, user: str, centre: str):
        super().__init__(hub, {"centre": centre, "partition": "cpu", "cores": 1, "memory": "1G",
                               "walltime": "01:00:00"}, user=user)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts Slurm centres, network namespaces and runs jobs as test users)")

    with LocalFederation(centres(), singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser",
                         users=list(USERS.values())) as fed:
        hub = LocalHub(fed.federation_file, fed.root / "hub", config_file=HUB_CONFIG, api_token=secrets.token_hex(20),
                       extra_config='c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}')
        routes = {centre: UserRoute(hub, user, centre) for centre, user in USERS.items()}
        spawn: dict[str, list[float]] = {centre: [] for centre in routes}
        http: dict[str, list[float]] = {centre: [] for centre in routes}
        try:
            hub.start()
            for route in routes.values():
                route.setup()
                route.once(fed.centres[route.options["centre"]])  # warm-up (imports, the ssh master)
            for i in range(args.runs):
                for centre, route in routes.items():
                    spawn[centre].append(route.once(fed.centres[centre]))
                print(f"run {i + 1}: " + "  ".join(f"{c}={spawn[c][-1]:.2f}s" for c in routes), flush=True)

            for route in routes.values():
                route.start()
            sessions = {c: requests.Session() for c in routes}
            for centre, session in sessions.items():
                session.headers.update(routes[centre].headers)
            for _ in range(args.requests):
                for centre, session in sessions.items():
                    url = f"{hub.url}/user/{USERS[centre]}/api/status"
                    started = time.perf_counter()
                    session.get(url, timeout=10).raise_for_status()
                    http[centre].append((time.perf_counter() - started) * 1000)
            for centre, route in routes.items():
                route.stop(fed.centres[centre])
        finally:
            hub.stop()

    local, fw = (statistics.median(spawn[c]) for c in ("local", "firewalled"))
    print(f"\nrequest-to-ready, median of {args.runs} runs (Slurm 22.05, one machine)")
    for centre in spawn:
        print(f"  {centre:11s} {statistics.median(spawn[centre]):6.2f} s   "
              f"(min {min(spawn[centre]):.2f} s, max {max(spawn[centre]):.2f} s)")
    print(f"  ratio firewalled/local = {fw / local:.3f}   (goal <= 1.1)")
    print(f"\nGET /user/<u>/api/status through the proxy, {args.requests} requests each, interleaved")
    for centre in http:
        print(f"  {centre:11s} p50 {percentile(http[centre], 50):6.2f} ms   p99 {percentile(http[centre], 99):6.2f} ms")
    gap = percentile(http["firewalled"], 50) - percentile(http["local"], 50)
    print(f"  p50 difference = {gap:+.2f} ms   (goal within 2 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
