"""Moving a kernel with its variables, against what it cannot do without: in one run, on the
same centres, a move of a kernel beside the server (alpha) to the firewalled beta, by phase,
against a cold start of a kernel at beta plus a raw copy of the same number of bytes over the
same channel (the mover's: shell requests out of the source, comm messages into the target,
through the hub's relay).

States: one ndarray; a dict of many small objects; a mixed notebook (array, frame, dict, text,
functions, a class), each at about 1, 10 and 100 MB. Goal: move / (cold start + raw copy) <= 1.5
at 100 MB.

    .venv/bin/python benchmarks/kernel_move.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from kernel_latency import USER, KernelSocket, Lab, server_at_alpha  # noqa: E402
from spawn_latency import JOBENV  # noqa: E402

MB = 1024 * 1024
STATES = {
    "ndarray": "import numpy as np\nstate = np.random.default_rng(1).random({mb} * {MB} // 8)",
    "small objects": "state = {{i: (i, f'{{i:040d}}', [i, i + 1]) for i in range({mb} * {MB} // 75)}}",
    "mixed": ("import numpy as np, pandas as pd\n"
              "arr = np.random.default_rng(2).random({mb} * {MB} // 8 // 2)\n"
              "df = pd.DataFrame({{'x': np.arange({mb} * {MB} // 8 // 4), 'y': 1.5}})\n"
              "d = {{i: str(i) * 10 for i in range({mb} * {MB} // 8 // 100)}}\n"
              "text = 'lorem ipsum ' * 1000\nf = lambda v: v + 1\n"
              "class Model:\n    def __init__(self, w):\n        self.w = w\nm = Model(arr[:10])"),
}


def runtime_file(kernel_id: str) -> str:
    """The server's connection file for a kernel (root reads it, as the mover's channel would)."""
    (path,) = glob.glob(f"/home/{USER}/.local/share/jupyter/runtime/kernel-{kernel_id}.json")
    return path


def execute(lab: Lab, kernel_id: str, code: str) -> None:
    async def go():
        async with KernelSocket(lab.hub, lab.token, kernel_id, lab.user) as ws:
            reply = await ws.request("execute_request", {"code": code, "silent": False}, "execute_reply")
            assert reply["content"]["status"] == "ok", reply["content"]
    asyncio.run(go())


def move(lab: Lab, kernel_id: str) -> dict:
    base = f"{lab.hub.url}/user/{lab.user}/fedhub/api"
    started = time.perf_counter()
    r = requests.post(f"{base}/kernels/{kernel_id}/move", headers=lab.headers, timeout=120,
                      json={"centre": "beta", "walltime": "00:30:00", "on_unmovable": "switch"})
    r.raise_for_status()
    while True:
        m = requests.get(f"{base}/moves/{r.json()['id']}", headers=lab.headers, timeout=60).json()
        if m["status"] in ("switched", "failed", "cancelled"):
            break
        time.sleep(0.05)
    m["seconds"] = time.perf_counter() - started
    assert m["status"] == "switched", m
    return m


def phase_seconds(m: dict) -> dict[str, float]:
    """Seconds in each phase, from the move's own timeline."""
    out, marks = {}, m["phases"] + [{"phase": "end", "at": m["phases"][-1]["at"]}]
    for here, after in zip(marks, marks[1:]):
        out[here["phase"]] = out.get(here["phase"], 0.0) + after["at"] - here["at"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--states", default=",".join(STATES), help="which of: " + ", ".join(STATES))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it starts Slurm centres, network namespaces and runs jobs as a test user)")
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with server_at_alpha(cores=2, memory="4G") as (fed, lab):
        lab.stop(asyncio.run(lab.time_start("fedhub-beta"))[1])  # warm-up: the ssh master, the return path
        for kind in args.states.split(","):
            code = STATES[kind]
            for mb in sizes:
                measured = {"move": [], "cold": [], "raw": [], "phases": []}
                for _ in range(args.runs):
                    source = lab.start("python3")
                    execute(lab, source, code.format(mb=mb, MB=MB))
                    m = move(lab, source)
                    measured["move"].append(m["seconds"])
                    measured["phases"].append({**phase_seconds(m), "saving*": m["saved_in"]})
                    size = m["progress"]["total"]
                    lab.stop(m["new_kernel_id"])
                    # the baseline: a cold kernel at beta, then the same bytes over the same channel
                    cold, target = asyncio.run(lab.time_start("fedhub-beta"))
                    source = lab.start("python3")
                    raw = subprocess.run([f"{JOBENV}/bin/python", str(HERE / "move_raw_copy.py"),
                                          runtime_file(source), runtime_file(target), str(size)],
                                         capture_output=True, text=True, check=True).stdout
                    measured["cold"].append(cold)
                    measured["raw"].append(float(raw))
                    lab.stop(source)
                    lab.stop(target)
                phases = {p: statistics.median(r.get(p, 0.0) for r in measured["phases"])
                          for p in measured["phases"][0]}
                row = {"kind": kind, "mb": size / MB, **{k: statistics.median(v) for k, v in measured.items()
                                                          if k != "phases"}, "phases": phases}
                rows.append(row)
                print(f"{kind:14s} {row['mb']:7.1f} MB  move {row['move']:6.2f} s  cold {row['cold']:5.2f} s  "
                      f"raw {row['raw']:5.2f} s  ratio {row['move'] / (row['cold'] + row['raw']):4.2f}  "
                      + " ".join(f"{p} {s:.2f}" for p, s in phases.items()), flush=True)
    print("\nmove / (cold start + raw copy), medians of", args.runs, "runs; goal <= 1.5 at 100 MB")
    print("(saving* runs while the target is queued and starting, so it is part of queued)")
    print("| state | size | move | cold start + raw copy | ratio | queued | saving* | copying | restoring | switching |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = r["phases"]
        print(f"| {r['kind']} | {r['mb']:.1f} MB | {r['move']:.2f} s | {r['cold']:.2f} + {r['raw']:.2f} s | "
              f"{r['move'] / (r['cold'] + r['raw']):.2f} | " + " | ".join(
                  f"{p.get(k, 0):.2f}" for k in ("queued", "saving*", "copying", "restoring", "switching")) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
