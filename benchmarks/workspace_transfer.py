"""Files between two centres' workspaces (issue 25): FedHub's transfer (the workspace agent as the
user at both ends, a tar passed through the hub in 1 MB blocks, each file checked against its
SHA-256 on arrival) against the raw copy of the same bytes over the same ssh connections: the two
ssh processes piped into each other, nothing in between (``ssh A cat file | ssh B 'cat > file'``
for the big file, ``ssh A tar c | ssh B tar x`` for the small files). Two ssh centres, each with
a home of its own; runs interleaved, medians compared in one run.

Goals: big file >= 0.9 of raw, small files >= 0.7; the hub's memory during the 1 GB transfer
under 64 MB above idle (this process plays the hub: its resident size, sampled every 20 ms).

    .venv/bin/python benchmarks/workspace_transfer.py [--runs 3] [--big-mb 1024] [--small 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec  # noqa: E402
from fedhub.federation import load_federation  # noqa: E402
from fedhub.slurm.routes import route_for  # noqa: E402
from fedhub.slurm.sshmux import SshMasters  # noqa: E402
from fedhub.workspace.transfer import End, carry  # noqa: E402

USER = "fhbench"
JOBENV = "/opt/fedhub/jobenv"


# the floor of any copy checked on arrival: the raw copy, its receiver also hashing what it writes
HASHED_CAT = """import hashlib, os, sys
digest, out = hashlib.sha256(), open("fedhub/big.bin", "wb")
while block := sys.stdin.buffer.read(1 << 20):
    digest.update(block)
    out.write(block)
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """The largest resident size of this process while the block runs."""

    def __enter__(self):
        self.peak, self.done = rss_mb(), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def as_user(argv: list[str]) -> None:
    subprocess.run(["runuser", "-u", USER, "--", *argv], check=True)


async def raw(source: End, target: End, remote_send: list[str], remote_receive: list[str]) -> float:
    """The two ssh commands piped into each other over the routes' own connections."""
    routes = route_for(source.centre.scheduler), route_for(target.centre.scheduler)
    send, env, _ = await routes[0]._prepare(remote_send, USER, None, None, 20)
    receive, _, _ = await routes[1]._prepare(remote_receive, USER, None, None, 20)
    started = time.monotonic()
    sender = subprocess.Popen(send, stdout=subprocess.PIPE, env=env)
    receiver = subprocess.Popen(receive, stdin=sender.stdout, env=env)
    sender.stdout.close()
    await asyncio.to_thread(receiver.wait)
    sender.wait()
    assert sender.returncode == 0 and receiver.returncode == 0
    return time.monotonic() - started


async def measure(fed, runs: int, big_mb: int, small: int) -> dict:
    federation = load_federation(fed.federation_file)
    a, b = End(federation.centre("east"), USER), End(federation.centre("west"), USER)
    at_a = fed.centres["east"].home_of(USER) / "fedhub"
    at_b = fed.centres["west"].home_of(USER) / "fedhub"
    as_user(["mkdir", "-p", str(at_a / "many")])
    as_user(["sh", "-c", f"head -c {big_mb}M /dev/urandom > {at_a}/big.bin"])
    as_user(["python3", "-c", "import os, sys\n"
             f"for i in range({small}):\n"
             f"    open(os.path.join({str(at_a / 'many')!r}, f'f{{i:05d}}.txt'), 'wb').write(os.urandom(10240))"])
    many = sorted(f"many/{p.name}" for p in (at_a / "many").iterdir())
    times: dict[str, list[float]] = {k: [] for k in ("fedhub big", "raw big", "hashed big", "fedhub small",
                                                     "raw small")}
    peaks: list[float] = []

    def clear():
        shutil.rmtree(at_b, ignore_errors=True)

    try:
        clear()
        await carry(a, b, ["many/f00000.txt"])  # the connections open here, as a running hub has them
        for _ in range(runs):
            clear()
            idle = rss_mb()
            with PeakMemory() as memory:
                t0 = time.monotonic()
                done = await carry(a, b, ["big.bin"])
                times["fedhub big"].append(time.monotonic() - t0)
            peaks.append(memory.peak - idle)
            assert done["bytes"] == big_mb << 20
            clear()
            as_user(["mkdir", "-p", str(at_b)])
            times["raw big"].append(await raw(a, b, ["cat", "fedhub/big.bin"],
                                              ["sh", "-c", "cat > fedhub/big.bin"]))
            clear()
            as_user(["mkdir", "-p", str(at_b)])
            times["hashed big"].append(await raw(a, b, ["cat", "fedhub/big.bin"],
                                                 [f"{JOBENV}/bin/python", "-c", HASHED_CAT]))
            clear()
            t0 = time.monotonic()
            done = await carry(a, b, many)
            times["fedhub small"].append(time.monotonic() - t0)
            assert done["files"] == small
            clear()
            as_user(["mkdir", "-p", str(at_b)])
            times["raw small"].append(await raw(a, b, ["tar", "cf", "-", "-C", "fedhub", "many"],
                                                ["tar", "xf", "-", "-C", "fedhub"]))
    finally:
        await SshMasters.close_all()
    return {"times": times, "peaks": peaks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    specs = [CentreSpec(cid, cid.title(), cpus=2, memory_mb=4096, route="ssh", own_home=True,
                        partitions=[PartitionSpec("cpu", 2, "2G", "01:00:00", default=True)])
             for cid in ("east", "west")]
    with LocalFederation(specs, singleuser_cmd=f"{JOBENV}/bin/jupyterhub-singleuser", users=[USER]) as fed:
        pwd.getpwnam(USER)
        result = asyncio.run(measure(fed, args.runs, args.big_mb, args.small))
    t = {k: statistics.median(v) for k, v in result["times"].items()}
    big_mb = args.big_mb
    print(f"\nworkspace transfer between two ssh centres, {args.runs} runs each, interleaved (medians)")
    print(f"  one file of {big_mb} MB:   FedHub {t['fedhub big']:.2f} s   raw ssh cat | ssh cat {t['raw big']:.2f} s"
          f"   ratio raw/FedHub {t['raw big'] / t['fedhub big']:.2f} (goal >= 0.9)")
    print(f"    the raw copy with its receiver hashing (SHA-256) what it writes: {t['hashed big']:.2f} s"
          f"   ratio to raw {t['raw big'] / t['hashed big']:.2f}: the most a copy checked on arrival reaches here")
    print(f"  {args.small} files of 10 kB: FedHub {t['fedhub small']:.2f} s   raw ssh tar c | ssh tar x "
          f"{t['raw small']:.2f} s   ratio raw/FedHub {t['raw small'] / t['fedhub small']:.2f} (goal >= 0.7)")
    print(f"  hub memory above idle during the {big_mb} MB transfer: max {max(result['peaks']):.1f} MB (goal < 64 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
