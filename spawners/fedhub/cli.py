"""The ``fedhub`` command: ``centres`` (what each centre's scheduler says), ``check`` (validate a
federation file) and ``demo`` (three local centres and the hub on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
import time
from pathlib import Path

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


def demo_lock(root: Path):
    """Hold ``<state dir>.lock`` for the demo's lifetime; refuse (naming the pid) if another demo does."""
    lock_path = root.with_name(root.name + ".lock")
    lock = open(lock_path, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        lock.close()
        return None, (f"fedhub demo: another demo (pid {pid}) is running in {root}. Stop it first (Ctrl-C in its "
                      f"terminal, or kill {pid}), or start this one with --state-dir, --port and --hub-port of its own.")
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock, None


def cmd_demo(args) -> int:
    from .demo.centres import LocalFederation, demo_centres
    from .demo.hub import LocalHub
    from .demo.materials import HeaderRecorder, teacher_folder
    from .demo.oidc import LocalOIDCProvider, Person
    from .demo.postgres import LocalPostgres

    if os.geteuid() != 0:
        print("fedhub demo: run as root (it starts Slurm daemons and runs jobs as demo users)", file=sys.stderr)
        return 2
    root = Path(args.state_dir)
    lock, refusal = demo_lock(root)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if root.exists():
        shutil.rmtree(root)  # our own, from a demo that ended: the lock says no demo uses it
    users = [u.strip() for u in args.users.split(",") if u.strip()]
    teacher = args.teacher.strip()
    everyone = users + ([teacher] if teacher and teacher not in users else [])
    password = os.environ.get("FEDHUB_DEMO_PASSWORD") or secrets.token_urlsafe(8)
    federation = LocalFederation(demo_centres(), root, singleuser_cmd=f"{args.jobenv}/bin/jupyterhub-singleuser",
                                 users=everyone)
    # the federation's identity provider: each demo user, the password, their groups (the demo
    # users are the students of the demo class) and their projects at alpha (the first user has two)
    projects = {u: [f"proj_{u}"] + ([f"proj_{u}_ml"] if u == users[0] else []) for u in everyone}
    groups = {u: ["researchers", DEMO_CLASS] if u in users else ["teachers"] for u in everyone}
    provider = LocalOIDCProvider(root / "oidc", {u: Person(password, {"groups": groups[u],
                                                                      "projects": {"alpha": projects[u]}})
                                                 for u in everyone}, port=args.oidc_port)
    class_file = write_demo_class(root, teacher) if teacher else None
    hub = LocalHub(
        federation.federation_file, root / "hub", config_file=Path(args.hub_config), public_port=args.port,
        hub_port=args.hub_port, users=everyone, password=password,
        api_token=os.environ.get("FEDHUB_API_TOKEN") or None, proxy=args.proxy, oidc=provider,
        extra_config=f"c.ClassService.class_file = {str(class_file)!r}\n" if class_file else "",
    )
    database = LocalPostgres(root / "postgres")  # the hub's database, as in a deployment
    recorder = HeaderRecorder(users[0])
    recording = False
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    status = 0
    try:
        print("Starting three Slurm centres on loopback...", flush=True)
        federation.start()
        offer_projects(federation, "alpha", projects)
        if teacher:  # the class's materials, and a student whose server records what it receives
            teacher_folder(teacher)
            recording = recorder.install()
        print(f"Starting the federation's login, an OpenID Connect provider (log: {provider.log_file})...",
              flush=True)
        provider.start()
        print(f"Starting PostgreSQL for the hub's database (log: {database.dir / 'postgres.log'})...", flush=True)
        database.start()
        hub.db_url = database.database("fedhub_demo")
        print(f"Starting JupyterHub (log: {hub.log_file})...", flush=True)
        hub.start()
        print(_demo_banner(hub, federation, users, password, provider, teacher, database,
                           recorder if recording else None), flush=True)
        while not stopping and hub.proc.poll() is None:
            time.sleep(0.5)
        if hub.proc.poll() is not None and not stopping:
            print(f"JupyterHub exited; last lines of its log:\n{hub.log_tail()}", file=sys.stderr)
            status = 1
    except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as e:
        print(f"fedhub demo could not start: {e}", file=sys.stderr)
        status = 1
    finally:
        print("\nStopping: hub, its database, jobs at every centre, Slurm daemons, login node...", flush=True)
        hub.stop()
        database.stop()
        provider.stop()
        federation.stop()
        recorder.remove()
        print("Everything the demo started has stopped.")
        lock.close()
    return status


DEMO_CLASS = "demo-class"


def write_demo_class(root: Path, teacher: str) -> Path:
    """The demo's class: its teacher, the demo users as students (the provider's groups claim),
    in session from now for eight hours, at alpha (in a reservation the hub makes) and gamma."""
    import yaml
    now = datetime.now(timezone.utc)
    doc = {"classes": [{
        "name": DEMO_CLASS, "title": "Notebooks on HPC (demo class)", "teachers": [teacher], "provider_groups": True,
        "centres": [{"centre": "alpha", "partition": "cpu", "reservation": {"create": {"cores": 2}}},
                    {"centre": "gamma", "partition": "small"}],
        "resources": {"cores": 1, "memory": "1G", "walltime": "02:00:00"},
        "sessions": [{"start": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
                      "end": (now + timedelta(hours=8)).isoformat(timespec="seconds")}],
    }]}
    path = root / "classes.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def offer_projects(federation, centre_id: str, projects: dict[str, list[str]]) -> None:
    """The demo centre offers each user the projects the provider lists (the federation file's
    ``projects: {claim: projects}``), and its Slurm knows them all."""
    import yaml
    centre = federation.centres[centre_id]
    for user, names in projects.items():
        for name in names:
            centre.run(["sacctmgr", "-i", "add", "account", name, f"cluster={centre_id}"])
            centre.run(["sacctmgr", "-i", "add", "user", user, f"account={name}", f"cluster={centre_id}"])
    doc = yaml.safe_load(federation.federation_file.read_text())
    next(c for c in doc["centres"] if c["id"] == centre_id)["projects"] = {"claim": "projects"}
    federation.federation_file.write_text(yaml.safe_dump(doc, sort_keys=False))


def _demo_banner(hub, federation, users, password, provider, teacher: str = "", database=None,
                 recorder=None) -> str:
    token_line = (
        "  The admin API token is the one in FEDHUB_API_TOKEN, e.g.:\n"
        f"    curl -H \"Authorization: token $FEDHUB_API_TOKEN\" -X POST {hub.url}/hub/api/users/{users[0]}/server \\\n"
        "         -d '{\"centre\": \"beta\", \"partition\": \"batch\", \"cores\": 2, \"memory\": \"2G\", \"walltime\": \"01:00:00\"}'\n"
        if hub.api_token and os.environ.get("FEDHUB_API_TOKEN") else
        "  Set FEDHUB_API_TOKEN before `make demo` to drive the hub's REST API from scripts.\n"
    )
    return (
        "\n"
        f"FedHub demo is running at {hub.url}\n"
        f"  Log in as {' or '.join(users)} with password: {password}\n"
        + (f"  {teacher} teaches {DEMO_CLASS} ({' and '.join(users)} are its students; same password): the class\n"
           f"  dashboard is {hub.url}/services/fedhub-classes/ and each student's form offers one click.\n"
           f"  {teacher}'s day1 folder is there to hand out and collect from the dashboard.\n"
           if teacher else "")
        + (f"  {recorder.student}'s server records every token it receives in {recorder.tokens}, as a hostile\n"
           "  student's could: what a hand-out sends it opens only that server, for a minute.\n"
           if recorder is not None else "") +
        f"  (\"Sign in with the federation's login\": the demo's OpenID Connect provider at {provider.issuer})\n"
        "  Pick a centre (alpha: local, beta: through its ssh login node, gamma: small) and resources,\n"
        "  press Start, and watch the job go through Slurm on the progress page.\n"
        f"  Centres' state:   .venv/bin/fedhub centres -f {federation.federation_file} --state-dir {hub.state_dir}\n"
        f"  Federation file:  {federation.federation_file}\n"
        + (f"  Hub database:     PostgreSQL at 127.0.0.1:{database.port} (database fedhub_demo), as a deployment\n"
           "                    with the Helm chart has it (helm/fedhub; README: Deploying on Kubernetes)\n"
           if database is not None else "")
        + token_line +
        "Press Ctrl-C to stop everything."
    )


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

    p = sub.add_parser("demo", help="three Slurm centres on loopback and the hub at http://127.0.0.1:8000")
    p.add_argument("--port", type=int, default=8000, help="public port of the hub (default: %(default)s)")
    p.add_argument("--hub-port", type=int, default=8081, help="port of the hub's API (default: %(default)s)")
    p.add_argument("--oidc-port", type=int, default=8090,
                   help="port of the demo's OpenID Connect provider (default: %(default)s)")
    p.add_argument("--users", default="alice,bob", help="demo users (created as Unix accounts)")
    p.add_argument("--teacher", default="carol", help="the demo class's teacher ('' for no class)")
    p.add_argument("--state-dir", default="/tmp/fedhub-demo", help="where the demo keeps its files")
    p.add_argument("--hub-config", required=True, help="the hub config to run (hub_config/jupyterhub_config.py)")
    p.add_argument("--jobenv", default="/opt/fedhub/jobenv", help="the notebook environment jobs run")
    p.add_argument("--proxy", default="/opt/fedhub/node/node_modules/.bin/configurable-http-proxy",
                   help="configurable-http-proxy")
    p.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
