"""``fedhub demo`` (also ``fedhub-demo``): three Slurm centres on loopback, the federation's
login, PostgreSQL and the hub, with the demo users alice and bob and carol's class. It lives in
the testbed, not in FedHub's wheel: an operator's hub never carries it."""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .centres import LocalFederation, demo_centres
from .hub import LocalHub
from .materials import HeaderRecorder, teacher_folder
from .oidc import LocalOIDCProvider, Person
from .postgres import LocalPostgres


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
            for centre in federation.centres.values():  # where she prepared it, at each of the class's centres
                teacher_folder(centre.home_of(teacher))
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
        "  Every page has a language menu (English / 简体中文); a Chinese browser gets 简体中文 first.\n"
        + _chinese_banner(hub, users, password, teacher) +
        "Press Ctrl-C to stop everything. 按 Ctrl-C 停止全部。"
    )


def _chinese_banner(hub, users, password, teacher: str) -> str:
    """The banner's main lines again in Chinese (issue 26: the demo speaks both)."""
    return (
        f"\nFedHub 演示正在运行：{hub.url}\n"
        f"  以 {' 或 '.join(users)} 登录，密码：{password}\n"
        + (f"  {teacher} 教授课程 {DEMO_CLASS}（{'、'.join(users)} 是学生，密码相同）：课程面板在\n"
           f"  {hub.url}/services/fedhub-classes/ ，学生的启动表单里可一键启动。\n" if teacher else "")
        + "  选择中心（alpha：本地，beta：经 ssh 登录节点，gamma：小型）和资源，按“启动”，\n"
        "  在进度页面上看作业经过 Slurm 排队和启动。每个页面右上角都可切换 English / 简体中文。\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fedhub demo", description=__doc__)
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
    return cmd_demo(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
