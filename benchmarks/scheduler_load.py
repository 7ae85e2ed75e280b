"""Slurm calls per minute with 10, 50 and 100 running servers: FedHub vs batchspawner.

Both sides poll real jobs on a real centre at JupyterHub's cadence (Spawner.poll_interval,
30 s by default); FedHub's monitor queries each centre every 20 s (its default). Time is
compressed tenfold (3 s polls, 2 s monitor, a 6 s window = one minute); after a warm-up
window, every Slurm command either side runs in the next window is counted by wrappers put
first on PATH.

    .venv/bin/python benchmarks/scheduler_load.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from batchspawner import SlurmSpawner  # noqa: E402
from traitlets.config import Config  # noqa: E402

import yaml  # noqa: E402

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub.spawning.spawner import FederatedSpawner  # noqa: E402
from helpers.support import counting_wrappers  # noqa: E402

SCALE = 10  # 60 s of JupyterHub time = 6 s here
POLL_S = 30 / SCALE
MONITOR_S = 20 / SCALE
WINDOW_S = 60 / SCALE
USER = "fhbench"


async def steady_state_calls(spawners, log: Path) -> int:
    """Poll each server every POLL_S (staggered, like JupyterHub's per-server timers) for a
    warm-up window, then count the Slurm calls made during the next window."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + 2 * WINDOW_S

    async def one(spawner, offset):
        await asyncio.sleep(offset)
        while loop.time() < end:
            await spawner.poll()
            await asyncio.sleep(POLL_S)

    async def measure():
        await asyncio.sleep(WINDOW_S)
        log.write_text("")
        await asyncio.sleep(WINDOW_S)
        return len(log.read_text().split())

    n = len(spawners)
    results = await asyncio.gather(measure(), *(one(s, POLL_S * i / n) for i, s in enumerate(spawners)))
    return results[0]


def fedhub_spawners(federation_file: Path, jobs: list[str], state_dir: Path) -> list:
    out = []
    for job in jobs:
        s = FederatedSpawner(config=Config(), user=SimpleNamespace(name=USER, url="/"),
                             federation_file=str(federation_file), monitor_interval=MONITOR_S,
                             state_dir=str(state_dir))
        s.load_state({"version": 3, "centre": "alpha", "request": None,
                      "job": {"job_id": job, "login": USER, "submission": ""}})
        out.append(s)
    return out


def counted_federation(fed: LocalFederation, wrap: Path) -> Path:
    """The same centre with Slurm's commands taken from the counting wrappers."""
    doc = yaml.safe_load(fed.federation_file.read_text())
    doc["centres"][0]["scheduler"]["commands_dir"] = str(wrap)
    path = fed.root / "counted.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def batchspawner_spawners(conf: Path, jobs: list[str]) -> list:
    out = []
    for job in jobs:
        s = SlurmSpawner(config=Config(), user=SimpleNamespace(name=USER, url="/", escaped_name=USER),
                         exec_prefix=f"env SLURM_CONF={conf}")
        s.get_env = lambda: {}  # no hub here; poll needs none of it
        s.job_id = job
        out.append(s)
    return out


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("run as root")
    spec = CentreSpec("alpha", "Alpha", cpus=128, memory_mb=65536,
                      partitions=[PartitionSpec("cpu", 128, "64G", "04:00:00", default=True)])
    wrap, log = counting_wrappers()
    rows = []
    with LocalFederation([spec], singleuser_cmd="/opt/fedhub/jobenv/bin/jupyterhub-singleuser", users=[USER]) as fed:
        conf = fed.centres["alpha"].conf
        env = {**os.environ, "SLURM_CONF": str(conf)}
        jobs = [subprocess.run(["sbatch", "--parsable", "--cpus-per-task=1", "--time=30", "--output=/dev/null",
                                "--wrap", "sleep 3600"], env=env, capture_output=True, text=True,
                               check=True).stdout.strip() for _ in range(100)]
        counted = counted_federation(fed, wrap)  # FedHub's routes
        os.environ["PATH"] = f"{wrap}:{os.environ['PATH']}"  # batchspawner's shell
        try:
            for n in (10, 50, 100):
                fed_spawners = fedhub_spawners(counted, jobs[:n], fed.root / f"state-{n}")
                batch = batchspawner_spawners(conf, jobs[:n])
                fedhub_calls = asyncio.run(steady_state_calls(fed_spawners, log))
                batch_calls = asyncio.run(steady_state_calls(batch, log))
                rows.append((n, fedhub_calls, batch_calls))
                print(f"{n} servers: FedHub {fedhub_calls}, batchspawner {batch_calls}", flush=True)
        finally:
            subprocess.run(["/usr/bin/scancel", *jobs], env=env)
    print("\nSlurm calls per minute (JupyterHub poll every 30 s; FedHub monitor every 20 s; time x1/10)")
    print(f"{'servers':>8} {'FedHub':>8} {'batchspawner':>13} {'ratio':>9}")
    for n, f, b in rows:
        print(f"{n:>8} {f:>8} {b:>13} {f'1/{b / f:.0f}' if f else '0':>9}")
    n, f, b = rows[-1]
    print(f"goal at 100 servers: at most 1/50 of batchspawner's calls -> {'met' if f * 50 <= b else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
