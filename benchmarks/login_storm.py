"""A login storm: N users log in within one minute, through the federation's OpenID Connect
provider (the hub's FedHub authenticator, GenericOAuthenticator) and, in the same run and on the
same federation, through a plain shared-password login (JupyterHub's DummyAuthenticator), as a
browser would: every redirect, the provider's login form, back to the hub's spawn page.

Reported for each: login time p50/p99 (the first request to the spawn page's answer), the hub's
CPU seconds (and the provider's) over the storm. Goal: OIDC p99 <= 2 x the password login's p99.

    .venv/bin/python benchmarks/login_storm.py [--users 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from fedhub_testbed.oidc import LocalOIDCProvider, Person  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV  # noqa: E402

PASSWORD = "storm-password-1"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def oidc_login(hub: LocalHub, user: str) -> float:
    started = time.perf_counter()
    s = requests.Session()
    form = s.get(f"{hub.url}/hub/oauth_login", timeout=60)
    r = s.post(form.url + "/login", data={"login": user, "password": PASSWORD}, timeout=60)
    assert r.status_code == 200 and r.url.startswith(f"{hub.url}/hub/spawn"), (r.status_code, r.url)
    return time.perf_counter() - started


def password_login(hub: LocalHub, user: str) -> float:
    started = time.perf_counter()
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=60)
    r = s.post(f"{hub.url}/hub/login", timeout=60,
               data={"username": user, "password": PASSWORD, "_xsrf": s.cookies["_xsrf"]})
    assert r.status_code == 200 and r.url.startswith(f"{hub.url}/hub/spawn"), (r.status_code, r.url)
    return time.perf_counter() - started


def storm(login, hub: LocalHub, users: list[str], seconds: float, others: dict[str, int]) -> dict:
    """Start one login every seconds/len(users) (an open loop, as people arrive), all within
    ``seconds``; measure each, and the CPU of the hub and of ``others`` meanwhile."""
    pids = {"hub": hub.proc.pid, **others}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    times, failures, lock = [], [], threading.Lock()

    def one(user: str) -> None:
        try:
            t = login(hub, user)
            with lock:
                times.append(t)
        except Exception as e:  # noqa: BLE001 - counted and shown
            with lock:
                failures.append(f"{user}: {e}")
    gap = seconds / len(users)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i, user in enumerate(users):
            time.sleep(max(0.0, started + i * gap - time.perf_counter()))
            pool.submit(one, user)
    wall = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    times.sort()
    return {"n": len(times), "failures": failures, "wall": wall, "cpu": cpu,
            "p50": statistics.median(times) if times else float("nan"),
            "p99": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] if times else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts a Slurm centre)")
    users = [f"storm{i:03d}" for i in range(args.users)]
    centres = [CentreSpec("alpha", "Alpha", cpus=4, memory_mb=8192,
                          partitions=[PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)])]
    with LocalFederation(centres, singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=[]) as fed:
        provider = LocalOIDCProvider(fed.root / "oidc", {u: Person(PASSWORD, {"groups": ["storm"]}) for u in users})
        oidc_hub = LocalHub(fed.federation_file, fed.root / "hub-oidc", config_file=HUB_CONFIG, users=users,
                            oidc=provider)
        password_hub = LocalHub(fed.federation_file, fed.root / "hub-password", config_file=HUB_CONFIG, users=users,
                                password=PASSWORD)
        provider.start()
        try:
            oidc_hub.start()
            password_hub.start()
            oidc_login(oidc_hub, users[0])  # warm-up: each hub's first page, the provider's first login
            password_login(password_hub, users[0])
            results = {
                "password": storm(password_login, password_hub, users, args.seconds, {}),
                "oidc": storm(oidc_login, oidc_hub, users, args.seconds, {"provider": provider.proc.pid}),
            }
        finally:
            oidc_hub.stop()
            password_hub.stop()
            provider.stop()
    print(f"{args.users} logins within {args.seconds:.0f} s each (open loop), through the proxy, to the spawn page:")
    print("| login | done | failed | p50 | p99 | hub CPU | provider CPU |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['n']} | {len(r['failures'])} | {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms | "
              f"{r['cpu']['hub']:.1f} s | {r['cpu'].get('provider', 0):.1f} s |")
        for failure in r["failures"][:3]:
            print("   ", failure)
    ratio = results["oidc"]["p99"] / results["password"]["p99"]
    print(f"OIDC p99 / password p99 = {ratio:.2f} (goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
