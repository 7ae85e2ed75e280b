"""The quota API under 100 concurrent clients, through the hub's proxy, on real accounting.

For 1, 10 and 100 distinct users asking (each with their own token), wrk keeps 100 concurrent
connections requesting quota figures for ``--seconds``; prints p50/p99 latency, and the
accounting queries (sacct, sacctmgr, storage command) the service made, counted by wrappers
on its PATH. One client alone gives the service's own latency.
Goals: p99 < 50 ms from the cache; accounting queries independent of the number of users.

    .venv/bin/python benchmarks/quota_api.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import requests

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec, ensure_unix_user, free_port  # noqa: E402
from fedhub_testbed.hub import LocalHub  # noqa: E402
from helpers.support import counting_wrappers  # noqa: E402

HUB_CONFIG = HERE.parent / "hub_config" / "jupyterhub_config.py"

CLIENTS = 100
MAX_AGE_S = 5


def wrk(url: str, targets: list[tuple[str, str]], seconds: float, connections: int, workdir: Path) -> dict:
    """Load with wrk (C, so the load generator leaves the CPU to the service); every request
    cycles through the users' (path, token) pairs; returns latency percentiles in ms."""
    script = workdir / "quota.lua"
    entries = ",".join(f'{{"{path}","{token}"}}' for path, token in targets)
    script.write_text(
        f"local targets = {{{entries}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #targets + 1\n"
        '  return wrk.format("GET", targets[i][1], {["Authorization"] = "token " .. targets[i][2]})\nend\n'
    )
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    figures = {"requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        figures[f"p{pct}"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    wrap, log = counting_wrappers()
    specs = [CentreSpec(cid, cid.title(), cpus=4, memory_mb=8192, accounting=True,
                        partitions=[PartitionSpec("cpu", 4, "4G", "04:00:00", default=True)]) for cid in ("alpha", "gamma")]
    hub_port = free_port()
    rows = []
    with LocalFederation(specs, singleuser_cmd="/opt/fedhub/jobenv/bin/jupyterhub-singleuser", users=["fhbench"]) as fed:
        users = [f"quser{i}" for i in range(100)]
        for user in users:  # figures exist only for logins FedHub may use: real accounts
            ensure_unix_user(user)
        doc = yaml.safe_load(fed.federation_file.read_text())
        for centre in doc["centres"]:  # Slurm's commands through the counting wrappers
            centre["scheduler"]["commands_dir"] = str(wrap)
        counted = fed.root / "counted.yaml"
        counted.write_text(yaml.safe_dump(doc))
        hub = LocalHub(counted, fed.root / "hub", config_file=HUB_CONFIG, hub_port=hub_port,
                       api_token=secrets.token_hex(20), users=users,
                       extra_config=f"c.QuotaService.max_age = {MAX_AGE_S}")
        hub.start()
        try:
            admin = {"Authorization": f"token {hub.api_token}"}
            tokens = []
            for user in users:
                requests.post(f"{hub.url}/hub/api/users/{user}", headers=admin, timeout=10)
                token = requests.post(f"{hub.url}/hub/api/users/{user}/tokens", headers=admin,
                                      json={"note": "bench"}, timeout=10).json()["token"]
                tokens.append((user, token))
            path = "/services/fedhub-quota/api/quota/{}"
            targets = [(path.format(user), token) for user, token in tokens]
            sample = requests.get(hub.url + targets[-1][0], headers={"Authorization": f"token {targets[-1][1]}"},
                                  timeout=30).json()
            assert {c["centre"] for c in sample["centres"]} == {"alpha", "gamma"}, sample  # real figures
            wrk(hub.url, targets, 3, CLIENTS, fed.root)  # warm: every user's token checked, figures cached
            single = wrk(hub.url, targets[:1], 10, 1, fed.root)
            print(f"1 client: p50 {single['p50']:.1f} ms, p99 {single['p99']:.1f} ms", flush=True)
            for n in (1, 10, 100):
                wrk(hub.url, targets[:n], 2, CLIENTS, fed.root)  # warm the cache and the token checks
                log.write_text("")
                figures = wrk(hub.url, targets[:n], args.seconds, CLIENTS, fed.root)
                queries = len(log.read_text().split())
                rows.append((n, figures["requests"], figures["p50"], figures["p99"], queries * 60 / args.seconds))
                print(f"{n} users: {rows[-1]}", flush=True)
        finally:
            hub.stop()
    print(f"\nQuota API, {CLIENTS} concurrent clients for {args.seconds:.0f} s each, through the hub's proxy "
          f"(2 centres with slurmdbd; cache max-age {MAX_AGE_S} s)")
    print(f"{'users':>6} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'accounting queries/min':>23}")
    for n, count, p50, p99, qpm in rows:
        print(f"{n:>6} {count:>9} {count / args.seconds:>7.0f} {p50:>7.1f} {p99:>7.1f} {qpm:>23.1f}")
    print(f"one client alone: p50 {single['p50']:.1f} ms, p99 {single['p99']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
