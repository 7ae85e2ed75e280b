"""Core-hours culling gives back in a simulated working day, against no culling.

A day of 50 users (seeded), each starting one server in the morning with the walltime people
ask for when they do not know how long they will stay (8 h, 2 cores, charge rate 1), with an
idle pattern drawn from what a notebook hub sees:

- arrival 08:30-10:00; work in bursts of 20-90 minutes with short pauses (2-15 min, which
  culling must never hit) and a lunch break of 45-75 minutes around 12:00-13:00;
- 60 % work until 16:30-18:00, 25 % only in the morning (until 10:30-12:00), 15 % only
  until lunch;
- 30 % stop their server when they leave; the others leave it to run to its walltime;
- JupyterHub learns of activity late: the server reports every 5 minutes (JupyterHub's
  default), so the hub's last_activity lags by up to 5 minutes.

The decisions are FedHub's own (``culling.decide.should_cull`` with a federation whose centre
sets ``idle_timeout``, checked every ``timeout / 2`` as the hub service does;
``culling.returned.returned_core_hours`` for what a stop gives back). A user culled before
coming back (after lunch, say) starts again at the next burst, restoring the snapshot: that
server is charged too, and the restarts are counted (a start's wait, no work lost).

    .venv/bin/python benchmarks/culling_day.py [--users 50] [--seed 24]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

from fedhub.culling.decide import should_cull
from fedhub.culling.returned import returned_core_hours
from fedhub.federation import parse_federation
from fedhub.units import format_walltime

H = 3600.0
WALLTIME = 8 * H
CORES = 2
REPORT_EVERY = 300  # the server's activity reports (JUPYTERHUB_ACTIVITY_INTERVAL)


@dataclass
class Day:
    start: float
    bursts: list  # (from, to) seconds of the day the user works
    leaves: float
    stops: bool


def user_day(rng: random.Random) -> Day:
    start = rng.uniform(8.5, 10) * H
    kind = rng.random()
    leaves = rng.uniform(16.5, 18) * H if kind < 0.6 else rng.uniform(10.5, 12) * H if kind < 0.85 \
        else rng.uniform(12.25, 13) * H
    lunch_from = rng.uniform(12, 12.5) * H
    lunch_to = lunch_from + rng.uniform(45, 75) * 60
    bursts, t = [], start
    while t < min(leaves, start + WALLTIME):
        end = min(t + rng.uniform(20, 90) * 60, leaves)
        if t < lunch_from < end:
            end = lunch_from
        bursts.append((t, end))
        t = lunch_to if lunch_from <= end < lunch_to else end + rng.uniform(2, 15) * 60
    return Day(start, bursts, leaves, rng.random() < 0.3)


def last_activity(day: Day, since: float, now: float) -> float:
    """What the hub knows at ``now`` of a server started at ``since``: the latest report of its
    last activity."""
    reported = now - (now - since) % REPORT_EVERY
    active = [min(to, reported) for frm, to in day.bursts if frm <= reported and to > since]
    return max(active, default=since)


def simulate(days: list[Day], timeout: int) -> dict:
    federation = parse_federation({"version": 1, "centres": [{
        "id": "alpha", "scheduler": {"type": "local", "slurm_conf": "/etc/slurm/slurm.conf"},
        "singleuser_cmd": "/opt/jupyter/bin/jupyterhub-singleuser",
        "sessions": {"idle_timeout": format_walltime(timeout)} if timeout else {},
        "partitions": [{"name": "cpu", "max_cores": 64, "max_memory": "256G", "max_walltime": "1-00:00:00"}]}]})
    server = {"full_name": "u/", "state": {"centre": "alpha", "request": {"partition": "cpu"}}}
    charged = returned = 0.0
    culled = restarts = 0
    every = max(5, min(300, timeout // 2)) if timeout else 0
    for day in days:
        start = day.start
        while start is not None:  # each server the user starts that day
            end = start + WALLTIME
            if day.stops:
                end = min(end, max(day.leaves, start))
            nxt = None
            t = start + every if every else end
            while every and t < end:
                if should_cull(federation, server, t - last_activity(day, start, t)):
                    culled += 1
                    returned += returned_core_hours(end - t, CORES, 1.0)
                    end = t
                    # the user comes back later: a new start, which restores the snapshot
                    nxt = next((frm for frm, _ in day.bursts if frm > t), None)
                    restarts += nxt is not None
                    break
                t += every
            charged += (end - start) / H * CORES
            start = nxt
    return {"charged": charged, "returned": returned, "culled": culled, "restarts": restarts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    days = [user_day(rng) for _ in range(args.users)]
    worked = sum(min(to, day.start + WALLTIME) - frm for day in days for frm, to in day.bursts
                 if frm < day.start + WALLTIME) / H * CORES
    base = simulate(days, 0)
    print(f"{args.users} users, {CORES} cores, {WALLTIME / H:.0f} h walltime; core-hours of real work: {worked:.1f}")
    print("| idle_timeout | core-hours charged | returned by culling | saved vs no culling | servers culled | "
          "starts again (restoring the snapshot) |")
    print("|---|---|---|---|---|---|")
    print(f"| none | {base['charged']:.1f} | 0 | 0 % | 0 | 0 |")
    for minutes in (120, 60, 30):
        r = simulate(days, minutes * 60)
        print(f"| {minutes} min | {r['charged']:.1f} | {r['returned']:.1f} | "
              f"{100 * (base['charged'] - r['charged']) / base['charged']:.0f} % | {r['culled']} | {r['restarts']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
