"""A placement decision with one ssh centre among three: the hub's persistent ssh connection
(a ControlMaster per login node and login) against one ssh connection per command, in one run.

Each decision asks all three centres concurrently when a job would start (sbatch --test-only);
the ssh centre's answer bounds the decision. Runs alternate between the two ways (warm masters
for the first). Goal: median decision < 100 ms with the persistent connection.

    .venv/bin/python benchmarks/ssh_placement.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub.federation import load_federation  # noqa: E402
from fedhub.slurm.client import SlurmClient  # noqa: E402
from fedhub.slurm.routes import SshRoute, route_for  # noqa: E402
from fedhub.slurm.sshmux import SshMasters  # noqa: E402
from fedhub.request import parse_user_options  # noqa: E402
from fedhub.placement import decide, estimate_all, fitting_options  # noqa: E402

USER = "fhbench"


async def decisions(federation, runs: int) -> dict[str, list[float]]:
    request = parse_user_options(federation, {"centre": "auto", "cores": 1, "walltime": "00:30:00",
                                              "memory": "512M"}, USER, allow_auto=True)
    options, rejected = fitting_options(federation, request, USER, {})
    ways = {
        "persistent connection": {c.id: SlurmClient(c) for c in federation.centres},
        "connection per command": {c.id: SlurmClient(c, route=SshRoute(c.scheduler, multiplex=False)
                                                     if c.scheduler.kind == "ssh" else route_for(c.scheduler))
                                   for c in federation.centres},
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for clients in ways.values():  # warm-up: the masters open here
            await estimate_all(options, request, USER, clients)
        for _ in range(runs):
            for name, clients in ways.items():
                t0 = time.monotonic()
                decision = decide(await estimate_all(options, request, USER, clients), rejected, datetime.now())
                times[name].append((time.monotonic() - t0) * 1000)
                assert decision.chosen is not None and {e.centre for e in decision.ranked} == {"alpha", "beta", "gamma"}, \
                    decision.summary()
    finally:
        await SshMasters.close_all()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    specs = [CentreSpec(cid, cid.title(), cpus=4, memory_mb=8192, route="ssh" if cid == "beta" else "local",
                        partitions=[PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)])
             for cid in ("alpha", "beta", "gamma")]
    with LocalFederation(specs, singleuser_cmd="/opt/fedhub/jobenv/bin/jupyterhub-singleuser", users=[USER]) as fed:
        times = asyncio.run(decisions(load_federation(fed.federation_file), args.runs))
    print(f"\nplacement decision, 3 centres (beta over ssh), {args.runs} runs each, interleaved")
    for name, values in times.items():
        values.sort()
        print(f"  {name:24s} median {statistics.median(values):6.1f} ms   p90 {values[int(0.9 * len(values))]:6.1f} ms")
    a, b = (statistics.median(v) for v in times.values())
    print(f"  ratio persistent / per command = {a / b:.2f}; goal: persistent median < 100 ms -> "
          f"{'met' if a < 100 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
