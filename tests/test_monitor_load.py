"""Scheduler load grows with centres, not servers: 100 servers, counted Slurm calls."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from traitlets.config import Config

from helpers.testbed import centre_entry, federation_variant, slurm
from fedhub.spawning.spawner import FederatedSpawner
from helpers.support import counting_wrappers


def test_hundred_servers_cost_one_query_per_centre_interval(centres):
    jobs = [slurm(centres, "alpha", "sbatch", "--parsable", "--partition=cpu", "--cpus-per-task=1", "--time=10",
                  "--output=/dev/null", "--wrap", "sleep 600") for _ in range(100)]
    wrap, log = counting_wrappers()
    counted = federation_variant(centres, "counted.yaml",
                                 lambda doc: centre_entry(doc, "alpha")["scheduler"].update(commands_dir=str(wrap)))
    spawners = []
    for i, job in enumerate(jobs):
        s = FederatedSpawner(config=Config(), user=SimpleNamespace(name=f"student{i}", url="/"),
                             federation_file=str(counted), monitor_interval=1.0, monitor_grace=5,
                             state_dir=str(centres.root / "state-load"))
        s.load_state({"version": 3, "centre": "alpha", "request": None,
                      "job": {"job_id": job, "login": "fhtest1", "submission": ""}})
        spawners.append(s)

    async def poll_for(seconds: float) -> tuple[list, int]:
        loop = asyncio.get_running_loop()
        end, rounds, results = loop.time() + seconds, 0, []
        while loop.time() < end:
            results = await asyncio.gather(*(s.poll() for s in spawners))
            rounds += 1
            await asyncio.sleep(0.25)
        await spawners[0].monitor.stop()  # before asyncio.run cancels what is left (see CentreWatcher.stop)
        return results, rounds

    try:
        results, rounds = asyncio.run(poll_for(6))
        calls = log.read_text().split()
        # 100 servers x 4 polls a second for 6 s = ~2400 polls; batchspawner: one squeue each
        assert rounds * 100 >= 2000
        assert all(r is None for r in results)  # all alive (running or pending)
        assert 4 <= calls.count("squeue") <= 9, calls  # one per 1 s interval, for all 100
        assert set(calls) <= {"squeue"}
        # Slurm says 10 jobs are gone: exactly those servers are reported stopped
        slurm(centres, "alpha", "scancel", *jobs[:10])
        results, _ = asyncio.run(poll_for(3))
        assert results[:10] == [1] * 10 and results[10:] == [None] * 90
    finally:
        slurm(centres, "alpha", "scancel", *jobs)
