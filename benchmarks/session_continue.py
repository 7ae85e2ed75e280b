"""Continuing a whole session at another centre, against what it cannot do without: in one run,
on the same centres, a continue of a server at alpha (two kernels holding about 100 MB together,
20 notebooks open on them) to the firewalled beta, by phase, against a cold spawn at beta plus a
raw copy of the same bytes over the same kind of channel (the mover's: out of one kernel and
into another through the server, SHA-256 per piece; move_raw_copy.py, between two kernels beside
the server at alpha). The centres share /home here, so no file travels: the copy measured is the
kernels' state, out through the old server and in through the new one.

Then the same session is restored from the snapshot its server writes before the walltime ends
(the job's limit cut to four minutes): a start at beta with ``"restore"`` until the server
answers, its kernels holding their variables, against the same cold spawn plus raw copy.

Goals: continue / (cold spawn + raw copy) <= 1.3; restore / (cold spawn + raw copy) <= 1.3.

    .venv/bin/python benchmarks/session_continue.py [--runs 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import LocalFederation  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from kernel_latency import USER, Lab, centres  # noqa: E402
from kernel_move import execute, phase_seconds  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV, HubRoute  # noqa: E402

OTHER = "fhbench2"  # whose cold spawn at beta is the baseline
MB = 1024 * 1024
STATES = ["import numpy as np\nstate = np.random.default_rng(1).random(50 * {MB} // 8)",
          "import numpy as np, pandas as pd\narr = np.random.default_rng(2).random(30 * {MB} // 8)\n"
          "df = pd.DataFrame({{'x': np.arange(10 * {MB} // 8), 'y': 1.5}})\n"
          "d = {{i: str(i) * 10 for i in range(200000)}}"]
ALPHA = {"centre": "alpha", "partition": "cpu", "cores": 2, "memory": "4G", "walltime": "02:00:00"}
BETA = {"centre": "beta", "partition": "cpu", "cores": 2, "memory": "4G", "walltime": "02:00:00"}


def runtime_file(user: str, kernel_id: str) -> str:
    (path,) = glob.glob(f"/home/{user}/.local/share/jupyter/runtime/kernel-{kernel_id}.json")
    return path


def open_session(lab: Lab) -> list[str]:
    """Two kernels with their state, 20 notebooks open on them (10 each)."""
    kernels = []
    for code in STATES:
        kernel = lab.start("python3")
        execute(lab, kernel, code.format(MB=MB))
        kernels.append(kernel)
    for i in range(20):
        path = f"bench-continue/nb-{i:02d}.ipynb"
        requests.post(f"{lab.hub.url}/user/{lab.user}/api/sessions", headers=lab.headers, timeout=60,
                      json={"path": path, "name": path.split("/")[-1], "type": "notebook",
                            "kernel": {"id": kernels[i % 2]}}).raise_for_status()
    return kernels


def continue_to_beta(hub: LocalHub, token: str) -> dict:
    headers = {"Authorization": f"token {token}"}
    started = time.perf_counter()
    r = requests.post(f"{hub.url}/hub/api/fedhub/users/{USER}/server/continue", headers=headers, json=BETA,
                      timeout=60)
    r.raise_for_status()
    while True:
        c = requests.get(f"{hub.url}{r.json()['url']}", headers=headers, timeout=30).json()
        if c["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    c["seconds"] = time.perf_counter() - started
    assert c["status"] == "done", c
    return c


def snapshot_before_end(hub: LocalHub, token: str, beta) -> str:
    """Cut the server's job at beta to four minutes, so the hub has it save its session (as it
    does five minutes before any end); the snapshot's id."""
    headers = {"Authorization": f"token {token}"}
    url = f"{hub.url}/hub/api/fedhub/users/{USER}/snapshots"
    before = {s["id"] for s in requests.get(url, headers=headers, timeout=30).json()["snapshots"]}
    (job,) = beta.run(["squeue", "--noheader", f"--user={USER}", "--format=%i"], check=True).stdout.split()
    beta.run(["scontrol", "update", f"JobId={job}", "TimeLimit=4"], check=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = [s for s in requests.get(url, headers=headers, timeout=30).json()["snapshots"] if s["id"] not in before]
        if new:
            return new[0]["id"]
        time.sleep(1)
    raise RuntimeError("the server at beta saved no session before its end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts Slurm centres, network namespaces and runs jobs as test users)")
    rows = []
    with LocalFederation(centres(), singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=[USER, OTHER]) as fed:
        hub = LocalHub(fed.federation_file, fed.root / "hub", config_file=HUB_CONFIG, api_token=secrets.token_hex(20),
                       extra_config='c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}')
        try:
            hub.start()
            mine, theirs = HubRoute(hub, ALPHA, user=USER), HubRoute(hub, BETA, user=OTHER)
            mine.setup()
            theirs.setup()
            theirs.once(fed.centres["beta"])  # warm-up: beta's ssh master and return path
            for _ in range(args.runs):
                mine.start()
                token = requests.post(f"{hub.url}/hub/api/users/{USER}/tokens", headers=mine.headers,
                                      json={"note": "bench"}, timeout=30).json()["token"]
                lab = Lab(hub, token)
                open_session(lab)
                c = continue_to_beta(hub, token)
                size = sum(k["size"] for k in c["kernels"])
                snapshot = snapshot_before_end(hub, token, fed.centres["beta"])
                mine.stop(fed.centres["beta"])
                restore = HubRoute(hub, {**BETA, "restore": snapshot}, user=USER).start()
                mine.stop(fed.centres["beta"])
                # the baseline: a cold spawn at beta, and the same bytes over the same channel
                cold = theirs.start()
                theirs.stop(fed.centres["beta"])
                mine.start()
                source, target = lab.start("python3"), lab.start("python3")
                raw = float(subprocess.run([f"{JOBENV}/bin/python", str(HERE / "move_raw_copy.py"),
                                            runtime_file(USER, source), runtime_file(USER, target), str(size)],
                                           capture_output=True, text=True, check=True).stdout)
                mine.stop(fed.centres["alpha"])
                rows.append({"continue": c["seconds"], "restore": restore, "cold": cold, "raw": raw, "mb": size / MB,
                             "phases": phase_seconds(c)})
                r = rows[-1]
                print(f"continue {r['continue']:6.2f} s  restore {restore:6.2f} s  cold {cold:5.2f} s  raw {raw:5.2f} s  "
                      f"ratios {r['continue'] / (cold + raw):4.2f} {restore / (cold + raw):4.2f}  {r['mb']:.1f} MB  "
                      + " ".join(f"{p} {s:.2f}" for p, s in r["phases"].items()), flush=True)
        finally:
            hub.stop()
    med = {k: statistics.median(r[k] for r in rows) for k in ("continue", "restore", "cold", "raw", "mb")}
    phases = {p: statistics.median(r["phases"].get(p, 0.0) for r in rows) for p in rows[0]["phases"]}
    print(f"\ncontinue / (cold spawn + raw copy), medians of {args.runs} runs; goal <= 1.3")
    print("| state | continue | cold spawn + raw copy | ratio | " + " | ".join(phases) + " |")
    print("|---|---|---|---|" + "---|" * len(phases))
    print(f"| 2 kernels, {med['mb']:.1f} MB, 20 notebooks | {med['continue']:.2f} s | {med['cold']:.2f} + "
          f"{med['raw']:.2f} s | {med['continue'] / (med['cold'] + med['raw']):.2f} | "
          + " | ".join(f"{s:.2f}" for s in phases.values()) + " |")
    print(f"\nrestore / (cold spawn + raw copy): {med['restore']:.2f} s / ({med['cold']:.2f} + {med['raw']:.2f} s) = "
          f"{med['restore'] / (med['cold'] + med['raw']):.2f}; goal <= 1.3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
