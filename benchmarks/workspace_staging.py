"""Staging overlaps the queue (issue 25): what a user's workspace change costs the next start.

alice (here ``fhbench``) writes 200 MB into her workspace at alpha (eight files of 25 MB: each under
the large-file size, which would leave a file there until asked); her server there stops (the
hub records it). Then beta, an ssh centre with a home of its own, is held full for 10 s by a
blocker job, and she starts a server there: the hub carries the 200 MB while her job waits. The
baseline, in the same run and the same 10 s wait: another user (``fhbench2``) with nothing to
bring. Measured: seconds from the start request to the server answering through the hub, and
that the file is at beta with the same SHA-256 when it answers.

Goal: 0 s added (the staging ends within the wait); the figure is the median difference.

    .venv/bin/python benchmarks/workspace_staging.py [--runs 3] [--mb 200] [--wait 10]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from spawn_latency import HUB_CONFIG, JOBENV, HubRoute, wait_no_jobs  # noqa: E402

USER, OTHER = "fhbench", "fhbench2"
ALPHA = {"centre": "alpha", "partition": "cpu", "cores": 1, "memory": "1G", "walltime": "00:30:00"}
BETA = {"centre": "beta", "partition": "cpu", "cores": 1, "memory": "1G", "walltime": "00:30:00"}


def centres() -> list[CentreSpec]:
    def parts():
        return [PartitionSpec("cpu", 2, "4G", "01:00:00", default=True)]
    return [CentreSpec("alpha", "Alpha", cpus=2, memory_mb=8192, partitions=parts()),
            CentreSpec("beta", "Beta", cpus=2, memory_mb=8192, route="ssh", own_home=True, partitions=parts())]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hold_full(beta, seconds: int) -> None:
    """A job on every CPU of beta for ``seconds``, running when this returns."""
    job = beta.run(["sbatch", "--parsable", "--partition=cpu", "--cpus-per-task=2", "--time=5",
                    "--output=/dev/null", "--wrap", f"sleep {seconds}"], check=True).stdout.strip()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = beta.run(["squeue", "--noheader", f"--jobs={job}", "--format=%T"]).stdout.strip()
        if state == "RUNNING":
            return
        time.sleep(0.1)
    raise RuntimeError("the blocker at beta did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--wait", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts Slurm centres and runs jobs as test users)")
    rows = []
    with LocalFederation(centres(), singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=[USER, OTHER]) as fed:
        hub = LocalHub(fed.federation_file, fed.root / "hub", config_file=HUB_CONFIG, api_token=secrets.token_hex(20),
                       extra_config='c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}')
        alpha, beta = fed.centres["alpha"], fed.centres["beta"]
        try:
            hub.start()
            mine_alpha, mine, theirs = (HubRoute(hub, ALPHA, user=USER), HubRoute(hub, BETA, user=USER),
                                        HubRoute(hub, BETA, user=OTHER))
            for route in (mine, theirs):
                route.setup()
            theirs.once(beta)  # warm-up: beta's ssh masters
            for run in range(args.runs):
                # the change: written at alpha while a server runs there, recorded when it stops
                mine_alpha.start()
                changed = [Path(f"/home/{USER}/fedhub/run{run}/part{i}.bin") for i in range(8)]
                subprocess.run(["runuser", "-u", USER, "--", "sh", "-c", f"mkdir -p /home/{USER}/fedhub/run{run} && " +
                                " && ".join(f"head -c {args.mb // 8}M /dev/urandom > {c}" for c in changed)], check=True)
                mine_alpha.stop(alpha)
                hold_full(beta, args.wait)
                staged = mine.start()
                there = [beta.home_of(USER) / c.relative_to(f"/home/{USER}") for c in changed]
                present = all(t.exists() and sha256(t) == sha256(c) for t, c in zip(there, changed))
                mine.stop(beta)
                wait_no_jobs(beta)
                hold_full(beta, args.wait)
                baseline = theirs.start()
                theirs.stop(beta)
                wait_no_jobs(beta)
                rows.append({"staged": staged, "baseline": baseline, "present": present})
                if not present:  # say why, from the hub's log
                    print("".join(line for line in open(hub.log_file, errors="replace")
                                  if "workspace" in line or "fhbench]" in line or "Error" in line)[-6000:])
                print(f"with {args.mb} MB to bring {staged:6.2f} s   nothing to bring {baseline:6.2f} s   "
                      f"added {staged - baseline:+5.2f} s   file there when ready: {present}", flush=True)
        finally:
            hub.stop()
    added = statistics.median(r["staged"] - r["baseline"] for r in rows)
    print(f"\nstaging {args.mb} MB during a {args.wait} s queue wait, {args.runs} runs (medians): start "
          f"{statistics.median(r['staged'] for r in rows):.2f} s with, {statistics.median(r['baseline'] for r in rows):.2f} s "
          f"without; added {added:+.2f} s (goal 0 s); files present when ready: "
          f"{sum(r['present'] for r in rows)} of {len(rows)}")
    return 0 if all(r["present"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
