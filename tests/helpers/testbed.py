"""What the integration and browser tiers share: the test federation's centres, the hub's settings
for tests, asking Slurm directly, waiting, and the hub's REST API as an admin script sees it.
The fixtures that start them live in tests/conftest.py."""
from __future__ import annotations
import json
import time
from pathlib import Path
import requests
import yaml
from fedhub_testbed.centres import CentreSpec, LocalFederation, PartitionSpec
from fedhub_testbed.hub import LocalHub



REPO = Path(__file__).resolve().parents[2]

HUB_CONFIG = REPO / "hub_config" / "jupyterhub_config.py"  # the project's own, as operators run it

JOBENV = "/opt/fedhub/jobenv"  # the Makefile's JOBENV

TEST_USERS = ["fhtest1", "fhtest2", "fhtest3"]

TEST_HUB_CONFIG = """
c.Spawner.poll_interval = 2
c.FederatedSpawner.start_timeout = 25
c.FederatedSpawner.http_timeout = 30
c.FederatedSpawner.cancel_retry_interval = 2
c.FederatedSpawner.scheduler_timeout = 8
c.FederatedSpawner.monitor_interval = 3
c.FederatedSpawner.monitor_grace = 6
c.FederatedSpawner.access_recheck_interval = 10
c.FederatedSpawner.failover_pending_timeout = 12
c.FederatedSpawner.class_failover_pending_timeout = 12
c.QuotaService.max_age = 3
c.FederatedSpawner.sweep_interval = 5
c.FederatedSpawner.workspace_record_interval = 10  # a running server's workspace recorded within 15 s
c.ClassService.reservation_interval = 2
c.ClassService.materials_interval = 1
c.ClassService.server_token_lifetime = 15
c.JupyterHub.last_activity_interval = 3600
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}  # POST answers 202 at once; tests follow progress


def site_job_hook(spawner, job):  # an operator's job hook (tests/test_spawning.py reads its marks at alpha)
    job.env["JUPYTERHUB_SITE_NOTE"] = f"{job.centre.id}-scratch"
    job.script = job.script.replace("set -euo pipefail\\n", "set -euo pipefail\\n# the site's job hook was here\\n", 1)


c.FederatedSpawner.modify_job_hook = site_job_hook
"""

CLASSROOM = "classroom"

def centre_specs() -> list[CentreSpec]:
    return [
        CentreSpec("alpha", "Alpha", cpus=4, memory_mb=8192, accounting=True, extend="01:00:00", private_tmp=True,
                   partitions=[
            PartitionSpec("cpu", 4, "4G", "04:00:00", default=True),
            # culled when idle (tests/test_culling.py); no other test leaves a server idle there that long
            PartitionSpec("debug", 2, "1G", "00:30:00", idle_timeout="00:00:40", kernel_idle_timeout="00:00:10"),
            # a classroom: up to 8 small servers per core; Slurm has it, the session's federation file not
            # (only the class tests' federation names it), so no other test's placement sees it
            PartitionSpec(CLASSROOM, 4, "8G", "02:00:00", charge_rate=3.0, oversubscribe=8)]),
        # beta and gamma have homes of their own (alpha's is this machine's, where the hub runs):
        # files reach them only through their login nodes, as at real centres. Alpha gives each job
        # its own /tmp (Slurm's job_container/tmpfs binds a job's namespace, which it cannot do
        # from inside the mount namespace a centre with a home of its own runs its node in)
        CentreSpec("beta", "Beta", cpus=4, memory_mb=8192, route="ssh", firewalled=True, own_home=True, partitions=[
            PartitionSpec("batch", 4, "4G", "08:00:00", default=True)]),
        CentreSpec("gamma", "Gamma", cpus=2, memory_mb=4096, accounting=True, route="ssh",
                   own_home=True, partitions=[
            PartitionSpec("small", 2, "2G", "01:00:00", charge_rate=0.5, default=True)]),
    ]

LOCAL_LOGINS = ["alice", "bob", "carol"]  # the pure tests' federation maps hub users to these

_variant_ports = iter(range(9000, 10000, 2))

def federation_variant(centres: LocalFederation, name: str, change) -> Path:
    """A copy of the test federation file with ``change(document)`` applied (a second federation
    over the same real centres, e.g. with counting Slurm wrappers as a centre's commands_dir).

    Its hub is a second hub in front of the same centres, so, as an operator would, it gets its
    own ports on a firewalled centre's login node (the session hub's forwards hold the others)."""
    doc = yaml.safe_load(centres.federation_file.read_text())
    for entry in doc["centres"]:
        if entry.get("network", {}).get("mode") == "tunnel":
            port = next(_variant_ports)
            entry["network"].update(hub_api_port=port)
            entry["network"].pop("public_port", None)
    change(doc)
    path = centres.root / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path

def centre_entry(doc: dict, centre_id: str) -> dict:
    return next(c for c in doc["centres"] if c["id"] == centre_id)

def squeue(centres: LocalFederation, centre: str, user: str | None = None) -> list[dict]:
    """What Slurm itself says is queued at a centre (asked directly, not through FedHub)."""
    argv = ["squeue", "--noheader", "--format=%i|%u|%T|%C|%P|%m|%l"]
    if user:
        argv.append(f"--user={user}")
    out = centres.centres["gamma" if centre == "broken" else centre].run(argv, check=True).stdout
    keys = ("job_id", "user", "state", "cpus", "partition", "memory", "time_limit")
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

def slurm(centres, centre: str, *argv: str, **kwargs) -> str:
    """Run a Slurm command at a centre as root (what the centre's operators would do; at a
    firewalled centre, on its login node's network)."""
    return centres.centres["gamma" if centre == "broken" else centre].run(list(argv), check=True, **kwargs).stdout.strip()

def blocker(centres, centre: str, cpus: int, minutes: int) -> str:
    """Occupy ``cpus`` at a centre for ``minutes`` (walltime), so Slurm's estimates are known."""
    partition = {"alpha": "cpu", "beta": "batch", "gamma": "small"}[centre]
    job = slurm(centres, centre, "sbatch", "--parsable", f"--partition={partition}", f"--cpus-per-task={cpus}",
                f"--time={minutes}", "--output=/dev/null", "--wrap", "sleep 3600")
    wait_for(lambda: any(j["job_id"] == job and j["state"] == "RUNNING" for j in squeue(centres, centre)),
             20, f"the blocker at {centre} to run")
    return job

def jobs_everywhere(centres, user) -> dict[str, list[dict]]:
    """The user's live jobs at every centre (asked of each centre's Slurm)."""
    return {c: live_jobs(centres, c, user) for c in centres.centres}

def live_jobs(centres, centre, user=None):
    return [j for j in squeue(centres, centre, user) if j["state"] in ("PENDING", "RUNNING", "CONFIGURING")]

def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")

class HubAPI:
    """The hub's REST API as an admin script sees it (through the proxy)."""

    def __init__(self, hub: LocalHub, token: str | None = None):
        self.hub = hub
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token or hub.api_token}"

    def url(self, path: str) -> str:
        return f"{self.hub.url}/hub/api{path}"

    def get(self, path, **kw):
        return self.session.get(self.url(path), timeout=30, **kw)

    def post(self, path, **kw):
        return self.session.post(self.url(path), timeout=60, **kw)

    def delete(self, path, **kw):
        return self.session.delete(self.url(path), timeout=60, **kw)

    def server(self, user: str) -> dict | None:
        return self.get(f"/users/{user}").json()["servers"].get("")

    def spawn(self, user: str, options: dict):
        return self.post(f"/users/{user}/server", json=options)

    def wait_ready(self, user: str, timeout: float = 60) -> dict:
        def ready():
            s = self.server(user)
            if s is None:
                raise AssertionError(f"{user}'s server disappeared while starting")
            return s if s["ready"] else None
        return wait_for(ready, timeout, f"{user}'s server to be ready")

    def stop(self, user: str, timeout: float = 60) -> None:
        r = self.delete(f"/users/{user}/server")
        assert r.status_code in (202, 204, 400), r.text
        wait_for(lambda: self.server(user) is None, timeout, f"{user}'s server to stop")

    def progress(self, user: str, until=None, timeout: float = 60) -> list[str]:
        """Progress messages as the spawn page shows them (event stream), up to ``until``."""
        messages = []
        with self.session.get(self.url(f"/users/{user}/server/progress"), stream=True, timeout=timeout) as r:
            for line in r.iter_lines():
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                messages.append(event.get("message", ""))
                if until and until(event):
                    break
                if event.get("ready") or event.get("failed"):
                    break
        return messages

    def through_proxy(self, user: str, path: str = "api/status", token: str | None = None):
        headers = {"Authorization": f"token {token}"} if token else dict(self.session.headers)
        return requests.get(f"{self.hub.url}/user/{user}/{path}", headers=headers, timeout=30,
                            allow_redirects=False)
