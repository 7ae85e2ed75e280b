"""The ``fedhub`` command: ``centres`` (what each centre's scheduler says), ``check`` (validate a
federation file) and ``demo`` (three local centres and the hub on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from .federation import Centre, FederationError, LocalScheduler, SshScheduler, load_federation
from .slurm.commands import SchedulerError, SchedulerUnreachable
from .slurm.monitor import CentreWatcher
from .slurm.sshmux import SshMasters, refused_forwards


# --------------------------------------------------------------------------- centres


async def centre_status(centre: Centre, timeout: float = 15.0, refused: list[dict] = ()) -> dict:
    """One centre's health and queue figures, from the same watcher the hub's monitor uses;
    ``refused``: the forwards the running hub could not bind (its state directory says)."""
    watcher = CentreWatcher(centre, timeout=timeout)
    status: dict = {
        "id": centre.id,
        "name": centre.name,
        "route": watcher.client.route.kind,
        "partitions": centre.partition_names,
        "reachable": False,
    }
    status["network"] = {"mode": centre.network.mode}
    if centre.network.tunnel:
        status["network"]["login_node_address"] = centre.network.login_node_address
    if isinstance(centre.scheduler, LocalScheduler):
        status["slurm_conf"] = centre.scheduler.slurm_conf
    else:
        status["login_node"] = f"{centre.scheduler.host}:{centre.scheduler.port}"
        master = SshMasters.get(centre.scheduler, centre.scheduler.query_user)
        connected = await master.ensure()  # the hub's persistent connection, opened as the hub would
        status["connection"] = "connected" if connected else f"not connected: {master.last_error}"
        mine = [r for r in refused if r["host"] == centre.scheduler.host and r["port"] == centre.scheduler.port]
        if mine:
            status["forwards_refused"] = [{k: r[k] for k in ("kind", "spec", "reason", "since")} for r in mine]
    snapshot = await watcher.refresh()  # nothing tracked: one sinfo, which also fills the node figures
    if not snapshot.answered:
        status["error"] = snapshot.error
        return status
    try:
        pending = await watcher.client.pending_count(None)
    except (SchedulerUnreachable, SchedulerError) as e:
        status["error"] = str(e)
        return status
    nodes = watcher.nodes.nodes
    status["reachable"] = True
    status["latency_ms"] = snapshot.latency_ms
    counts = {"idle": 0, "allocated": 0, "mixed": 0, "other": 0}
    for node in nodes:
        state = node.state.rstrip("*~#!%$@^-")
        counts[state if state in counts else "other"] += 1
    status["nodes"] = {**counts, "total": len(nodes)}
    status["cpus"] = {
        "idle": sum(n.cpus_idle for n in nodes),
        "allocated": sum(n.cpus_allocated for n in nodes),
        "total": sum(n.cpus_total for n in nodes),
    }
    status["idle_cpus_by_partition"] = {p: watcher.nodes.idle_cpus(p) for p in centre.partition_names}
    status["jobs_pending"] = pending
    return status


def format_centres(rows: list[dict]) -> str:
    header = ("CENTRE", "STATE", "NODES idle/alloc/mixed/other", "CPUS idle/total", "PENDING", "PARTITIONS", "ROUTE",
              "NETWORK")
    table = [header]
    for r in rows:
        network = r["network"]["mode"]
        if "connection" in r:
            network += f" ({'connected' if r['connection'] == 'connected' else 'not connected'}"
            network += f"; {len(r['forwards_refused'])} FORWARD(S) REFUSED)" if r.get("forwards_refused") else ")"
        route = r.get("slurm_conf") or r.get("login_node")
        if r["reachable"]:
            n, c = r["nodes"], r["cpus"]
            table.append((
                r["id"], f"up ({r['latency_ms']:.0f} ms)",
                f"{n['idle']}/{n['allocated']}/{n['mixed']}/{n['other']}",
                f"{c['idle']}/{c['total']}", str(r["jobs_pending"]), ", ".join(r["partitions"]), route, network,
            ))
        else:
            table.append((r["id"], "DOWN", "-", "-", "-", ", ".join(r["partitions"]), route, network))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in table]
    for r in rows:
        if not r["reachable"]:
            lines.append(f"{r['id']}: {r['error']}")
        for f in r.get("forwards_refused", []):
            lines.append(f"{r['id']}: the hub could not bind the forward {f['kind']} {f['spec']} (since {f['since']}); "
                         f"nothing is sent there until it can: {f['reason']}")
    return "\n".join(lines)


def cmd_centres(args) -> int:
    federation = _load_or_exit(args.federation)

    async def gather():
        try:
            refused = refused_forwards(args.state_dir)
            return await asyncio.gather(*(centre_status(c, args.timeout, refused) for c in federation.centres))
        finally:
            await SshMasters.close_all()

    rows = asyncio.run(gather())
    if args.json:
        print(json.dumps({"federation": federation.source, "centres": rows}, indent=2))
    else:
        print(format_centres(rows))
    return 0 if all(r["reachable"] for r in rows) else 1


def cmd_check(args) -> int:
    federation = _load_or_exit(args.federation)
    problems = 0
    for c in federation.centres:
        print(f"{c.id}: {c.name}; {len(c.partitions)} partitions ({', '.join(c.partition_names)})")
        if isinstance(c.scheduler, SshScheduler) and not os.path.isfile(c.scheduler.known_hosts_file):
            problems += 1
            s = c.scheduler
            target = s.host if s.port == 22 else f"-p {s.port} {s.host}"
            print(f"  {c.id}: the pinned host keys file {s.known_hosts_file} does not exist. Make it with\n"
                  f"    ssh-keyscan {target} > {s.known_hosts_file}\n"
                  f"  and compare `ssh-keygen -lf {s.known_hosts_file}` with the fingerprints the centre publishes.")
    if problems:
        print(f"{federation.source}: valid, but {problems} centre(s) cannot be reached until the above is done")
        return 1
    print(f"{federation.source}: OK, {len(federation.centres)} centres")
    return 0


def _load_or_exit(path: str):
    try:
        return load_federation(path)
    except FederationError as e:
        print(f"fedhub: {e}", file=sys.stderr)
        sys.exit(2)


# --------------------------------------------------------------------------- demo


def cmd_demo(rest: list[str]) -> int:
    """``fedhub demo``: the loopback testbed's demo (fedhub_testbed, installed by the Makefile from
    a FedHub checkout, not part of FedHub's wheel, image or chart)."""
    try:
        from fedhub_testbed.demo import main as demo_main
    except ImportError:
        print("fedhub demo: the demo's testbed (fedhub-testbed) is not installed; it ships with FedHub's source, "
              "not its wheel: run `make demo` in a FedHub checkout", file=sys.stderr)
        return 2
    return demo_main(rest)


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fedhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("centres", help="show each centre: reachable, nodes, pending jobs, partitions")
    p.add_argument("--federation", "-f", required=True, help="the federation file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per scheduler query")
    p.add_argument("--state-dir", default="/var/lib/fedhub",
                   help="the hub's state directory (c.FederatedSpawner.state_dir): to show the forwards it could not bind")
    p.set_defaults(func=cmd_centres)

    p = sub.add_parser("check", help="validate a federation file")
    p.add_argument("federation", help="the federation file")
    p.set_defaults(func=cmd_check)

    sub.add_parser("demo", add_help=False,
                   help="three Slurm centres on loopback and the hub at http://127.0.0.1:8000 (fedhub demo --help)")

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["demo"]:
        return cmd_demo(argv[1:])

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
