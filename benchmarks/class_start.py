"""A class arrives: N students log in (the hub's password login, as a browser does) and press
"Start for <class>" on their spawn page, all within one minute (an open loop, as people arrive),
against one hub and a Slurm centre whose classroom partition holds them all.

Reported: the time from the first login until every server is ready, failures, the hub API's
p50/p99 while it happens (a user's GET /hub/api/user every 0.2 s), against the floor: the
machine's CPU-seconds for one server start (hub, Slurm, server; the median of three, measured in
the same run) x N / cores. Goals: all ready within 1.3 x the floor, no failure, API p99 < 1 s.

    .venv/bin/python benchmarks/class_start.py [--students 100] [--seconds 60]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV  # noqa: E402

PASSWORD = "class-password-1"
CLASS = "bench-101"


def busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU-seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(url: str, token: str, stop, answers) -> None:
    """A user's GET every 0.2 s until ``stop``; the latencies go back on ``answers``."""
    latencies = []
    while not stop.is_set():
        t = time.perf_counter()
        requests.get(url, headers={"Authorization": f"token {token}"}, timeout=60)
        latencies.append(time.perf_counter() - t)
        time.sleep(0.2)
    answers.put(latencies)


def percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    if not values:
        return float("nan"), float("nan")
    return statistics.median(values), values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


def log_in(hub: LocalHub, user: str) -> requests.Session:
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=60)
    r = s.post(f"{hub.url}/hub/login", timeout=60, data={"username": user, "password": PASSWORD,
                                                         "_xsrf": s.cookies["_xsrf"]})
    assert r.status_code == 200 and r.url.startswith(f"{hub.url}/hub/spawn"), (r.status_code, r.url)
    return s


def press_start_for_class(hub: LocalHub, s: requests.Session, user: str) -> None:
    r = s.post(f"{hub.url}/hub/spawn", data={"class": CLASS, "_xsrf": s.cookies["_xsrf"]}, timeout=60,
               allow_redirects=False)
    assert r.status_code in (200, 302), (r.status_code, r.text[:300])


def ready_users(hub: LocalHub, admin: dict) -> tuple[set[str], dict[str, str]]:
    users = requests.get(f"{hub.url}/hub/api/users?state=active", headers=admin, timeout=60).json()
    ready = {u["name"] for u in users if u["servers"].get("", {}).get("ready")}
    return ready, {}


def one_start_cpu(hub: LocalHub, admin: dict, user: str) -> tuple[float, float]:
    """(machine CPU-seconds, wall seconds) of one class start, from the request to ready, stopped after."""
    before, started = busy_seconds(), time.perf_counter()
    r = requests.post(f"{hub.url}/hub/api/users/{user}/server", json={"class": CLASS}, headers=admin, timeout=60)
    assert r.status_code in (201, 202), r.text
    while not requests.get(f"{hub.url}/hub/api/users/{user}", headers=admin, timeout=30).json()["servers"] \
            .get("", {}).get("ready"):
        time.sleep(0.1)
    cpu, wall = busy_seconds() - before, time.perf_counter() - started
    requests.delete(f"{hub.url}/hub/api/users/{user}/server", headers=admin, timeout=60)
    while requests.get(f"{hub.url}/hub/api/users/{user}", headers=admin, timeout=30).json()["servers"]:
        time.sleep(0.2)
    return cpu, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--node-nice", type=int, default=0,
                        help="run the centre's jobs at this niceness: here the compute node is the hub's own "
                             "machine; at a real centre it is not, and the hub does not share its CPUs with them")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts a Slurm centre and runs servers as the students)")
    students = [f"stu{i:03d}" for i in range(args.students)]
    probe_user = "stuprobe"
    cores = os.cpu_count() or 1
    centres = [CentreSpec("alpha", "Alpha", cpus=4, memory_mb=65536, partitions=[
        PartitionSpec("classroom", 4, "8G", "02:00:00", default=True, oversubscribe=64)], node_nice=args.node_nice)]
    with LocalFederation(centres, singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser",
                         users=students + [probe_user]) as fed:
        hub = LocalHub(fed.federation_file, fed.root / "hub", config_file=HUB_CONFIG,
                       users=students + [probe_user, "teacher"], password=PASSWORD,
                       api_token=os.urandom(16).hex())
        hub.start()
        admin = {"Authorization": f"token {hub.api_token}"}
        try:
            now = datetime.now(timezone.utc)
            r = requests.put(f"{hub.url}/hub/api/fedhub/classes/{CLASS}", headers=admin, timeout=60, json={
                "title": "Benchmark 101", "teachers": ["teacher"], "students": students + [probe_user],
                "centres": [{"centre": "alpha", "partition": "classroom"}],
                "resources": {"cores": 1, "memory": "128M", "walltime": "01:00:00"},
                "sessions": [{"start": (now - timedelta(minutes=5)).isoformat(),
                              "end": (now + timedelta(hours=2)).isoformat()}]})
            assert r.status_code == 201, r.text
            one_start_cpu(hub, admin, probe_user)  # warm-up: the first start reads everything from disk
            singles = [one_start_cpu(hub, admin, probe_user) for _ in range(3)]
            cpu_one = statistics.median(c for c, _ in singles)
            wall_one = statistics.median(w for _, w in singles)
            floor = cpu_one * len(students) / cores

            probe_token = requests.post(f"{hub.url}/hub/api/users/{probe_user}/tokens", headers=admin, timeout=30,
                                        json={"note": "probe"}).json()["token"]
            # the probe is its own process: the 32 login threads here must not delay its clock
            stop = multiprocessing.Event()
            answers = multiprocessing.Queue()
            failures: list[str] = []
            lock = threading.Lock()

            def arrive(user: str) -> None:
                try:
                    press_start_for_class(hub, log_in(hub, user), user)
                except Exception as e:  # noqa: BLE001 - counted and shown
                    with lock:
                        failures.append(f"{user}: {e}")
            prober = multiprocessing.Process(target=probe, args=(f"{hub.url}/hub/api/user", probe_token, stop, answers))
            prober.start()
            log_mark = len(hub.log_file.read_text(errors="replace"))
            processes = {"hub": hub.proc.pid}
            for args_, pid in hub.service_pids().items():
                for short, mark in (("proxy", "configurable-http-proxy"), ("quota service", "fedhub.quota"),
                                    ("class service", "fedhub.classes")):
                    if mark in args_:
                        processes[short] = pid
            cpu_before = {name: process_cpu(pid) for name, pid in processes.items()}
            busy_before = busy_seconds()
            started = time.perf_counter()
            gap = args.seconds / len(students)
            with ThreadPoolExecutor(max_workers=32) as pool:
                for i, user in enumerate(students):
                    time.sleep(max(0.0, started + i * gap - time.perf_counter()))
                    pool.submit(arrive, user)
                deadline = started + args.seconds + max(600.0, 3 * floor)
                ready: set[str] = set()
                while time.perf_counter() < deadline:
                    ready, _ = ready_users(hub, admin)
                    if len(ready & set(students)) == len(students):
                        break
                    time.sleep(0.5)
            all_ready = time.perf_counter() - started
            busy = busy_seconds() - busy_before
            cpu = {name: process_cpu(pid) - cpu_before[name] for name, pid in processes.items()}
            stop.set()
            latencies = answers.get(timeout=60)
            prober.join()
            handled = sorted(float(m) / 1000 for m in re.findall(
                rf"200 GET /hub/api/user \({probe_user}@[^)]*\) ([0-9.]+)ms", hub.log_file.read_text(errors="replace")[log_mark:]))
            missing = sorted(set(students) - ready)
            failures += [f"{u}: not ready" for u in missing]
            p50, p99 = percentiles(latencies)
            hub_p50, hub_p99 = percentiles(handled)
            for user in students:
                requests.delete(f"{hub.url}/hub/api/users/{user}/server", headers=admin, timeout=60)
        finally:
            hub.stop()
    print(f"{len(students)} students log in and press 'Start for {CLASS}' within {args.seconds:.0f} s "
          f"(open loop), one hub, {cores} cores:")
    print(f"  one class start (median of 3): {cpu_one:.2f} CPU-s of the machine, {wall_one:.2f} s")
    print(f"  floor = {cpu_one:.2f} x {len(students)} / {cores} = {floor:.1f} s")
    print("| students | all ready after | floor | ratio | failures | hub API p50 | hub API p99 | machine CPU |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(students)} | {all_ready:.1f} s | {floor:.1f} s | {all_ready / floor:.2f} | {len(failures)} | "
          f"{p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | {busy:.0f} s |")
    print(f"  the same requests as the hub handled them (its log): p50 {hub_p50 * 1000:.0f} ms, "
          f"p99 {hub_p99 * 1000:.0f} ms ({len(handled)} requests)")
    print("  CPU meanwhile: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items())
          + f" (node niceness {args.node_nice})")
    for failure in failures[:5]:
        print("   ", failure)
    print("Goals: ratio <= 1.3, no failure, hub API p99 < 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
