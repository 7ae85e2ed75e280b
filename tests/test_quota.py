"""The quota service behind the real hub, and spawns refused when an allocation is used up."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests

from helpers.testbed import TEST_USERS, live_jobs, slurm, wait_for

U1, U2, U3 = TEST_USERS


def user_token(api, user: str) -> str:
    return api.post(f"/users/{user}/tokens", json={"note": "quota test"}).json()["token"]


def quota(hub, user: str, token: str):
    return requests.get(f"{hub.url}/services/fedhub-quota/api/quota/{user}",
                        headers={"Authorization": f"token {token}"}, timeout=30)


def sacct_core_hours(centres, centre: str, user: str) -> float:
    """What Slurm says the user's allocation (proj_<user>) has used this month. Only that account:
    other tests charge the user's other projects, which the service reports separately."""
    out = slurm(centres, centre, "sacct", "-X", "-n", "-P", f"--user={user}", f"--accounts=proj_{user}", f"-M{centre}",
                "-o", "CPUTimeRAW", "-S", datetime.now().strftime("%Y-%m-01"))
    return sum(int(x) for x in out.split()) / 3600


def test_each_user_reads_their_own_figures_which_match_slurm(api, hub, centres):
    env = {**os.environ, "SLURM_CONF": str(centres.centres["alpha"].conf)}
    subprocess.run(["runuser", "-u", U1, "--", "sbatch", "--wait", "--cpus-per-task=2", "--time=5",
                    "--output=/dev/null", f"--account=proj_{U1}", "--wrap", "sleep 2"],
                   env=env, check=True, capture_output=True, cwd="/")
    scratch = centres.centres["gamma"].scratch / U1
    (scratch / "results.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    du_bytes = int(subprocess.run(["du", "-sb", str(scratch)], capture_output=True, text=True).stdout.split()[0])
    token = user_token(api, U1)

    def matching():
        r = quota(hub, U1, token)
        assert r.status_code == 200, r.text
        figures = {c["centre"]: c for c in r.json()["centres"]}
        used = figures["alpha"]["core_hours"]["used"]
        return figures if abs(used - sacct_core_hours(centres, "alpha", U1)) < 1e-3 else None

    figures = wait_for(matching, 20, "the service's figures to match sacct", 1)
    assert set(figures) == {"alpha", "gamma"}  # the centres that keep accounts
    alpha = figures["alpha"]
    assert alpha["charge_account"] == f"proj_{U1}" and alpha["login"] == U1 and alpha["level"] == "ok"
    assert alpha["period_start"].startswith(datetime.now().strftime("%Y-%m-01"))
    assert datetime.fromisoformat(alpha["read_at"]) <= datetime.now()
    # storage, from the centre's own command (du over each user's scratch directory)
    assert figures["gamma"]["storage_gb"] == {"used": round(du_bytes / 1024**3, 3), "limit": 1.0}
    # someone else's figures: refused; an admin may read them
    r = quota(hub, U2, token)
    assert r.status_code == 403 and "only your own quota" in r.json()["message"]
    assert quota(hub, U2, hub.api_token).status_code == 200


def test_figures_come_from_the_cache_not_one_query_per_request(api, hub):
    token = user_token(api, U3)
    health = lambda: requests.get(f"{hub.url}/services/fedhub-quota/api/health", timeout=10,  # noqa: E731
                                  headers={"Authorization": f"token {hub.api_token}"}).json()["refreshes"]
    quota(hub, U3, token)
    before = health()
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: quota(hub, U3, token).status_code, range(60)))
    assert codes == [200] * 60
    assert health() - before <= 2 * 2  # at most one batch per accounting centre per max-age (3 s)


def test_spawn_is_refused_where_the_allocation_is_used_up(api, centres):
    slurm(centres, "alpha", "sacctmgr", "-i", "modify", "user", U2, f"account=proj_{U2}", "cluster=alpha",
          "set", "GrpTRESMins=cpu=0")
    try:
        def refusal():
            """The refusal as the user sees it: a 403 from the API, or (the test hub answers
            spawn requests at once) the progress page's last message."""
            r = api.spawn(U2, {"centre": "alpha", "walltime": "00:10:00"})
            if r.status_code == 403:
                return r.json()["message"]
            last = api.progress(U2)[-1]
            if "is used up" in last:
                return last.removeprefix("Spawn failed: ")
            api.stop(U2)  # started before the hub read the new limit
            return None
        message = wait_for(refusal, 30, "the hub to see the used-up allocation", 1)
        wait_for(lambda: api.server(U2) is None, 20, "the refused spawn to leave no record")
        assert message.startswith(f"Your allocation proj_{U2} at Alpha is used up: 0.")
        assert "of 0 core-hours this period (since " in message
        assert "Centres where you still have allocation: gamma" in message
        assert api.server(U2) is None and live_jobs(centres, "alpha", U2) == []
        # 'any centre' skips alpha
        api.spawn(U2, {"centre": "auto", "cores": 1, "memory": "512M", "walltime": "00:10:00"})
        messages = api.progress(U2)
        line = next(m for m in messages if " chosen " in m)
        assert "alpha: allocation used up." in line and not line.startswith("Centre alpha"), line
        assert messages[-1].startswith("Server ready")
    finally:
        slurm(centres, "alpha", "sacctmgr", "-i", "modify", "user", U2, f"account=proj_{U2}", "cluster=alpha",
              "set", "GrpTRESMins=cpu=-1")
