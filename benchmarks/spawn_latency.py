"""Request-to-ready time on one real Slurm centre, three ways, in one run:

  (a) FedHub's FederatedSpawner            POST /hub/api/users/u/server -> server answers via the proxy
  (b) plain batchspawner SlurmSpawner      same request, same measurement, its own hub
  (c) jupyterhub-singleuser sbatch'ed      sbatch -> the server answers on its port (no hub at all)

Runs are interleaved (a, b, c, a, b, c, ...) so drift on the machine hits all three alike.
Prints each run, the medians and the ratios a/b (goal <= 0.9) and a/c.

    .venv/bin/python benchmarks/spawn_latency.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec, RunningCentre, free_port  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402

HUB_CONFIG = HERE.parent / "hub_config" / "jupyterhub_config.py"
JOBENV = "/opt/fedhub/jobenv"
USER = "fhbench"
POLL = 0.05


def wait_http(url: str, headers: dict | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, headers=headers, timeout=5, allow_redirects=False)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(POLL)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def live_jobs(centre: RunningCentre) -> list[str]:
    return centre.run(["squeue", "-h", "-t", "PD,R,CG,CF", "-o", "%i"]).stdout.split()


def wait_no_jobs(centre: RunningCentre, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while live_jobs(centre) and time.monotonic() < deadline:
        time.sleep(0.2)


class HubRoute:
    """Spawn through a hub's REST API; ready = the server answers through the hub's proxy."""

    def __init__(self, hub: LocalHub, options: dict, user: str = USER):
        self.hub = hub
        self.options = options
        self.user = user
        self.headers = {"Authorization": f"token {hub.api_token}"}

    def setup(self):
        requests.post(f"{self.hub.url}/hub/api/users/{self.user}", headers=self.headers, timeout=10)

    def start(self) -> float:
        """Request a server; return seconds until it answers through the proxy."""
        start = time.monotonic()
        r = requests.post(f"{self.hub.url}/hub/api/users/{self.user}/server", headers=self.headers,
                          json=self.options, timeout=60)
        r.raise_for_status()
        wait_http(f"{self.hub.url}/user/{self.user}/api/status", self.headers)
        return time.monotonic() - start

    def stop(self, centre: RunningCentre) -> None:
        requests.delete(f"{self.hub.url}/hub/api/users/{self.user}/server", headers=self.headers, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s = requests.get(f"{self.hub.url}/hub/api/users/{self.user}", headers=self.headers, timeout=10).json()
            if not s["servers"]:
                break
            time.sleep(0.2)
        wait_no_jobs(centre)

    def once(self, centre: RunningCentre) -> float:
        elapsed = self.start()
        self.stop(centre)
        return elapsed


class DirectSbatch:
    """jupyterhub-singleuser as a plain Slurm job; ready = it answers on its own port."""

    def __init__(self, hub: LocalHub):
        self.hub = hub

    def setup(self):
        headers = {"Authorization": f"token {self.hub.api_token}"}
        requests.post(f"{self.hub.url}/hub/api/users/{USER}", headers=headers, timeout=10)
        self.token = requests.post(f"{self.hub.url}/hub/api/users/{USER}/tokens", headers=headers,
                                   json={"note": "bench"}, timeout=10).json()["token"]

    def once(self, centre: RunningCentre) -> float:
        conf = centre.conf
        port = free_port()
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SLURM_CONF": str(conf), "JUPYTERHUB_API_TOKEN": self.token,
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{self.hub.hub_port}/hub/api", "JUPYTERHUB_USER": USER,
            "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{USER}", "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_SERVICE_PREFIX": f"/user/{USER}/", "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{port}/user/{USER}/",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{USER}/oauth_callback",
        }
        script = f"#!/bin/bash\nexec {JOBENV}/bin/jupyterhub-singleuser\n"
        start = time.monotonic()
        job = subprocess.run(
            ["runuser", "-u", USER, "--", "sbatch", "--parsable", "--partition=cpu", "--cpus-per-task=1",
             "--mem=1024M", "--time=01:00:00", "--output=/dev/null", "--export=ALL"],
            input=script, env=env, capture_output=True, text=True, check=True, cwd="/",
        ).stdout.strip()
        wait_http(f"http://127.0.0.1:{port}/user/{USER}/api")
        elapsed = time.monotonic() - start
        centre.run(["scancel", job], check=True)
        wait_no_jobs(centre)
        return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep-log", metavar="PATH", help="copy FedHub's hub log there (to read a spawn's timeline)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts a Slurm centre and runs jobs as a test user)")

    hub_a_port, hub_b_port = free_port(), free_port()
    spec = CentreSpec("alpha", "Alpha", cpus=4, memory_mb=8192,
                      partitions=[PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)])
    with LocalFederation([spec], singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=[USER]) as fed:
        centre = fed.centres["alpha"]
        conf = centre.conf
        hub_a = LocalHub(fed.federation_file, fed.root / "hub-a", config_file=HUB_CONFIG, hub_port=hub_a_port,
                         api_token=secrets.token_hex(20),
                         extra_config='c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}')
        hub_b = LocalHub(fed.federation_file, fed.root / "hub-b", config_file=HERE / "plain_batchspawner_config.py",
                         hub_port=hub_b_port, api_token=secrets.token_hex(20),
                         extra_config=f'c.SlurmSpawner.exec_prefix = "runuser -u {{username}} -- env SLURM_CONF={conf}"')
        try:
            hub_a.start()
            hub_b.start()
            routes = {
                "a FederatedSpawner": HubRoute(hub_a, {"centre": "alpha", "partition": "cpu", "cores": 1,
                                                       "memory": "1G", "walltime": "01:00:00"}),
                "b batchspawner SlurmSpawner": HubRoute(hub_b, {}),
                # the bare server checks in with the plain hub (no internal SSL: no certificate to hand it)
                "c sbatch jupyterhub-singleuser": DirectSbatch(hub_b),
            }
            for route in routes.values():
                route.setup()
            for route in routes.values():  # warm-up: first imports, page caches
                route.once(centre)
            times: dict[str, list[float]] = {name: [] for name in routes}
            for i in range(args.runs):
                for name, route in routes.items():
                    times[name].append(route.once(centre))
                print(f"run {i + 1}: " + "  ".join(f"{n.split()[0]}={times[n][-1]:.2f}s" for n in routes), flush=True)
        finally:
            hub_a.stop()
            hub_b.stop()
            if args.keep_log:
                Path(args.keep_log).write_text(Path(hub_a.log_file).read_text())
    medians = {name: statistics.median(values) for name, values in times.items()}
    print("\nrequest-to-ready, median of", args.runs, "runs on one centre (Slurm 22.05, loopback)")
    for name, value in medians.items():
        spread = f"min {min(times[name]):.2f}s max {max(times[name]):.2f}s"
        print(f"  {name:32s} {value:6.2f} s   ({spread})")
    a, b, c = medians.values()
    print(f"  ratio a/b = {a / b:.3f}   (goal <= 0.9)")
    print(f"  ratio a/c = {a / c:.3f}   (hub overhead over a bare job)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
