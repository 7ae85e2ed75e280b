"""Placement quality on real centres: how often each strategy picks the centre that starts first.

Each scenario loads three real Slurm centres with blocker jobs of random sizes and walltimes
(a blocker sleeps past its walltime, so Slurm ends it exactly then). The true earliest start
of the request at each centre follows from those known end times, computed here and not
asked of Slurm. Strategies:

  FedHub        the real placement: sbatch --test-only at every centre, ranked
  random        a uniformly random centre
  round-robin   centres in turn
  most idle     the centre with the most idle CPUs now (sinfo)

A pick is right when its centre is among those that start the request first.

    .venv/bin/python benchmarks/placement_quality.py [--scenarios 40] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fedhub.federation import load_federation  # noqa: E402
from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub.request import parse_user_options  # noqa: E402
from fedhub.placement import decide, estimate_all, fitting_options  # noqa: E402
from fedhub.slurm.client import SlurmClient  # noqa: E402

USER = "fhbench"
SIZES = {"alpha": 8, "beta": 8, "gamma": 4}
WALLTIMES_MIN = [5, 10, 20, 30, 45, 60, 90]


def scenario(rng: random.Random) -> tuple[dict[str, list[tuple[int, int]]], int]:
    """Blockers per centre as (cpus, walltime minutes), and the request's cores."""
    blockers = {}
    for centre, total in SIZES.items():
        busy = rng.choice([0, total // 2, total - 1, total, total]) if rng.random() < 0.9 else rng.randint(0, total)
        jobs = []
        while busy > 0:
            cpus = rng.randint(1, busy)
            jobs.append((cpus, rng.choice(WALLTIMES_MIN)))
            busy -= cpus
        blockers[centre] = jobs
    return blockers, rng.randint(1, 4)


def true_start_min(total: int, jobs: list[tuple[int, int]], cores: int) -> float:
    free = total - sum(c for c, _ in jobs)
    if free >= cores:
        return 0
    for cpus, ends in sorted(jobs, key=lambda j: j[1]):
        free += cpus
        if free >= cores:
            return ends
    return float("inf")


def slurm(fed, centre, *argv) -> str:
    env = {**os.environ, "SLURM_CONF": str(fed.centres[centre].conf)}
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=True).stdout.strip()


def load(fed, blockers) -> list[tuple[str, str]]:
    submitted = []
    for centre, jobs in blockers.items():
        for cpus, minutes in jobs:
            job = slurm(fed, centre, "sbatch", "--parsable", f"--cpus-per-task={cpus}", f"--time={minutes}",
                        "--output=/dev/null", "--wrap", "sleep 7200")
            submitted.append((centre, job))
    deadline = time.monotonic() + 20
    for centre in blockers:
        while time.monotonic() < deadline and "PENDING" in slurm(fed, centre, "squeue", "-h", "-o", "%T"):
            time.sleep(0.05)
    return submitted


def unload(fed, submitted) -> None:
    for centre in {c for c, _ in submitted}:
        slurm(fed, centre, "scancel", *[j for c, j in submitted if c == centre])
    deadline = time.monotonic() + 30
    for centre in fed.centres:
        while time.monotonic() < deadline and slurm(fed, centre, "squeue", "-h", "-t", "PD,R,CG", "-o", "%i"):
            time.sleep(0.1)


async def fedhub_pick(federation, request) -> str | None:
    options, rejected = fitting_options(federation, request, USER, {})
    clients = {c.id: SlurmClient(c) for c in federation.centres}
    decision = decide(await estimate_all(options, request, USER, clients), rejected, datetime.now())
    return decision.chosen.centre if decision.chosen else None


async def most_idle_pick(federation) -> str:
    idle = {}
    for c in federation.centres:
        nodes = await SlurmClient(c).nodes(None)
        idle[c.id] = sum(n.cpus_idle for n in nodes)
    return max(idle, key=lambda cid: idle[cid])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    specs = [CentreSpec(cid, cid.title(), cpus=n, memory_mb=16384,
                        partitions=[PartitionSpec("cpu", n, "8G", "04:00:00", default=True)])
             for cid, n in SIZES.items()]
    rng, pick_rng = random.Random(args.seed), random.Random(args.seed + 1)
    right = {"FedHub": 0, "random": 0, "round-robin": 0, "most idle CPUs": 0}
    placement_ms = []
    with LocalFederation(specs, singleuser_cmd="/opt/fedhub/jobenv/bin/jupyterhub-singleuser", users=[USER]) as fed:
        federation = load_federation(fed.federation_file)
        ids = federation.centre_ids
        for i in range(args.scenarios):
            blockers, cores = scenario(rng)
            starts = {c: true_start_min(SIZES[c], jobs, cores) for c, jobs in blockers.items()}
            first = min(starts.values())
            best = {c for c, s in starts.items() if s == first}
            request = parse_user_options(federation, {"centre": "auto", "cores": cores, "walltime": "00:30:00",
                                                      "memory": "512M"}, USER, allow_auto=True)
            submitted = load(fed, blockers)
            try:
                t0 = time.monotonic()
                fedhub = asyncio.run(fedhub_pick(federation, request))
                placement_ms.append((time.monotonic() - t0) * 1000)
                picks = {
                    "FedHub": fedhub,
                    "random": pick_rng.choice(ids),
                    "round-robin": ids[i % len(ids)],
                    "most idle CPUs": asyncio.run(most_idle_pick(federation)),
                }
            finally:
                unload(fed, submitted)
            for name, pick in picks.items():
                right[name] += pick in best
            print(f"scenario {i + 1:3d}: cores={cores} starts(min)={starts} best={sorted(best)} "
                  + " ".join(f"{k}={v}" for k, v in picks.items()), flush=True)
    n = args.scenarios
    print(f"\nPlacement quality over {n} scenarios on 3 real centres (seed {args.seed})")
    print(f"{'strategy':<16} {'right':>6} {'share':>7}")
    for name, count in right.items():
        print(f"{name:<16} {count:>6} {count / n:>7.0%}")
    placement_ms.sort()
    print(f"FedHub placement latency: median {placement_ms[len(placement_ms) // 2]:.0f} ms, "
          f"max {placement_ms[-1]:.0f} ms (3 centres, sbatch --test-only at each, concurrently)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
