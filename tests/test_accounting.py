"""Allocations from real Slurm accounting (slurmdbd) at two centres, read in one batch each."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import datetime

from helpers.testbed import TEST_USERS, slurm, wait_for
from fedhub.quota.accounting import allocations, parse_limits, parse_usage
from fedhub.federation import load_federation
from fedhub.slurm.client import SlurmClient


def test_parse_usage_and_limits_from_real_formats():
    usage = parse_usage("fhtest1|proj_fhtest1|6|3|billing=2,cpu=2,node=1\n"
                        "fhtest1|proj_fhtest1|120|60|billing=2,cpu=2,gres/gpu=1,node=1\n"
                        "fhtest2|proj_fhtest2|3600|3600|cpu=1,gres/gpu:a100=2\n|||\n")
    assert usage[("fhtest1", "proj_fhtest1")].cpu_seconds == 126
    assert usage[("fhtest1", "proj_fhtest1")].gpu_seconds == 60
    assert usage[("fhtest2", "proj_fhtest2")].gpu_seconds == 7200
    # Slurm lists typed GPUs twice: the total (gres/gpu=2) and per type (gres/gpu:a100=2). Defect B6:
    # both were counted, doubling GPU-hours.
    twice = parse_usage("fhtest3|proj_fhtest3|3600|3600|cpu=1,gres/gpu=2,gres/gpu:a100=2,node=1\n")
    assert twice[("fhtest3", "proj_fhtest3")].gpu_seconds == 7200
    limits = parse_limits("proj_a||cpu=600\nproj_a|alice|cpu=60,gres/gpu=30\nroot|root|\n")
    assert limits[("proj_a", "")].cpu_minutes == 600
    assert (limits[("proj_a", "alice")].cpu_minutes, limits[("proj_a", "alice")].gpu_minutes) == (60, 30)
    assert limits[("root", "root")].cpu_minutes is None


def _sacct_cpu_seconds(centres, centre, user) -> int:
    out = slurm(centres, centre, "sacct", "-X", "-n", "-P", f"--user={user}", f"-M{centre}", "-o", "CPUTimeRAW",
                "-S", datetime.now().strftime("%Y-%m-01"))
    return sum(int(x) for x in out.split())


def test_usage_and_limits_match_slurm_at_two_centres(centres):
    fed = load_federation(centres.federation_file)
    user = TEST_USERS[2]
    # real work: two jobs of 2 CPUs x 3 s, charged to the user's project, at alpha and gamma
    for centre in ("alpha", "gamma"):
        env = {**os.environ, "SLURM_CONF": str(centres.centres[centre].conf)}
        subprocess.run(["runuser", "-u", user, "--", "sbatch", "--parsable", "--wait", "--cpus-per-task=2",
                        "--time=5", "--output=/dev/null", f"--account=proj_{user}", "--wrap", "sleep 3"],
                       env=env, check=True, capture_output=True, cwd="/")
    slurm(centres, "alpha", "sacctmgr", "-i", "modify", "user", user, f"account=proj_{user}", "cluster=alpha",
          "set", "GrpTRESMins=cpu=600")

    async def read():
        from fedhub.quota.accounting import read_centre
        return {c: await read_centre(SlurmClient(fed.centre(c)), TEST_USERS) for c in ("alpha", "gamma", "beta")}

    def with_limit():
        figures = asyncio.run(read())
        return figures if figures["alpha"][user].core_hours_limit else None

    try:
        found = wait_for(with_limit, 20, "slurmdbd to report the new limit")
    finally:  # leave no limit behind for later tests (placement prefers unlimited centres)
        slurm(centres, "alpha", "sacctmgr", "-i", "modify", "user", user, f"account=proj_{user}", "cluster=alpha",
              "set", "GrpTRESMins=cpu=-1")
    for centre in ("alpha", "gamma"):
        a = found[centre][user]
        assert a.charge_account == f"proj_{user}" and a.login == user
        assert abs(a.core_hours_used - _sacct_cpu_seconds(centres, centre, user) / 3600) < 1e-9
        assert a.core_hours_used >= 2 * 3 / 3600
        assert a.period_start == datetime(datetime.now().year, datetime.now().month, 1)
    assert found["alpha"][user].core_hours_limit == 10.0
    assert found["alpha"][user].percent_used == round(100 * found["alpha"][user].core_hours_used / 10, 1)
    assert found["gamma"][user].core_hours_limit is None
    assert found["beta"] == {}  # beta keeps no accounts FedHub reads


def test_parse_storage():
    from fedhub.quota.accounting import parse_storage
    out = "8192\t/scratch/alice\n3149824\t/scratch/bob/\n3158016\t/scratch\nbad line\n"
    assert parse_storage(out) == {"alice": 8192, "bob": 3149824, "scratch": 3158016}


def test_tighter_of_user_and_account_limit_applies(unix_users):
    from fedhub.federation import parse_federation
    from helpers.federations import GOOD
    doc = dict(GOOD)
    doc["centres"] = [dict(GOOD["centres"][0], accounting={"charge_account_template": "proj_{username}"})]
    centre = parse_federation(doc).centres[0]
    usage = parse_usage("alice|proj_alice|36000|10|cpu=1\nbob|proj_alice|18000|10|cpu=1\n")
    limits = parse_limits("proj_alice||cpu=900\nproj_alice|alice|cpu=6000\n")
    a = allocations(centre, usage, limits, ["alice"], datetime(2026, 11, 1), datetime(2026, 11, 24))["alice"]
    # own: 100 h limit, 10 h used (90 left); account: 15 h limit, 15 h used by both (0 left)
    assert (a.core_hours_limit, a.core_hours_used, a.core_hours_remaining, a.used_up) == (15.0, 15.0, 0.0, True)
