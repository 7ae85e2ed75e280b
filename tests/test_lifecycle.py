"""One Slurm job's lifecycle (``fedhub.slurm.job``) and the owed-scancel backlog, against real Slurm.

Two faults cannot be made with a real Slurm on demand and are injected at the command level,
each said where it is used: sbatch whose answer is lost after the controller accepted the job,
and a controller that accepts scancel and then stops answering squeue. Both are wrappers in a
centre's ``commands_dir`` that run the real command.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from helpers.testbed import TEST_USERS, centre_entry, federation_variant, live_jobs, wait_for
from fedhub.federation import load_federation
from fedhub.slurm.cancellations import SET_ASIDE_NAME, CancelBacklog
from fedhub.slurm.client import SlurmClient
from fedhub.slurm.commands import JobSpec, SchedulerUnreachable
from fedhub.slurm.job import SlurmJob
from fedhub.slurm.monitor import CentreWatcher
from fedhub.slurm.owner import JobOwner
from fedhub.slurm.routes import _run_or_unreachable
from fedhub.spawning.spawner import FederatedSpawner

USER = TEST_USERS[1]
SCRIPT = "#!/bin/bash\nsleep 600\n"


def spec(partition="cpu") -> JobSpec:
    return JobSpec(name="x", partition=partition, cores=1, memory_mb=100, walltime_s=600, output="/dev/null")


def wrapped(tmp_path: Path, command: str, body: str) -> Path:
    """A commands_dir whose ``command`` runs ``body`` (a fault around the real command)."""
    d = tmp_path / "wrap"
    d.mkdir(exist_ok=True)
    d.chmod(0o755)
    tmp_path.chmod(0o755)
    script = d / command
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return d


def alpha_with(centres, tmp_path, name, commands_dir):
    path = federation_variant(centres, name, lambda doc: centre_entry(doc, "alpha")["scheduler"].update(
        commands_dir=str(commands_dir)))
    return load_federation(path).centre("alpha")


def test_a_lost_sbatch_answer_is_looked_into_and_the_job_adopted(centres, tmp_path):
    """Defect B4a: an sbatch that timed out after the controller accepted the job was reported as
    'nothing was submitted' while the job ran. Fault injected: sbatch runs, then its answer is
    held back past the hub's timeout (a dropped connection looks the same)."""
    commands = wrapped(tmp_path, "sbatch", '/usr/bin/sbatch "$@"; sleep 30')
    alpha = alpha_with(centres, tmp_path, "lost-answer.yaml", commands)
    backlog = CancelBacklog(str(tmp_path / "state"), load_federation(centres.federation_file), 30)
    job = SlurmJob(alpha, USER, JobOwner("10st10st", USER), client=SlurmClient(alpha, timeout=3), backlog=backlog)
    try:
        job_id = asyncio.run(job.submit(spec(), SCRIPT, {}))
        (listed,) = live_jobs(centres, "alpha", USER)
        assert listed["job_id"] == job_id  # the hub follows the job Slurm really has
        assert backlog.entries == []
    finally:
        centres.centres["alpha"].cancel_all_jobs()


def test_a_lost_submission_is_found_and_cancelled_once_the_centre_answers(centres, tmp_path):
    """When the job cannot be looked for at once, the backlog keeps looking for its submission tag."""
    fed = load_federation(centres.federation_file)
    alpha = fed.centre("alpha")
    owner = JobOwner("10st10st", USER)
    job_id = asyncio.run(SlurmClient(alpha).submit(
        JobSpec(name=owner.job_name, partition="cpu", cores=1, memory_mb=100, walltime_s=600, output="/dev/null",
                comment=owner.comment("alpha", "c0ffee")), SCRIPT, USER, {}))
    backlog = CancelBacklog(str(tmp_path / "state"), fed, 30)
    backlog.add_lost_submission("alpha", USER, owner.job_name, "c0ffee")
    assert asyncio.run(backlog.retry_once()) == 0
    wait_for(lambda: all(j["job_id"] != job_id for j in live_jobs(centres, "alpha")), 20, "the lost job to end")


def test_stop_is_bounded_and_forgets_the_job_when_slurm_stops_answering(centres, tmp_path):
    """Defects B5 and B7: waiting for Slurm to confirm a scancel had no bound, and a stopped job
    stayed in the monitor's squeue list for good. Fault injected: squeue hangs (a controller that
    accepted the scancel and then stopped answering)."""
    commands = wrapped(tmp_path, "squeue", "exec sleep 1000")
    alpha = alpha_with(centres, tmp_path, "hanging-squeue.yaml", commands)
    fed = load_federation(centres.federation_file)
    job_id = asyncio.run(SlurmClient(fed.centre("alpha")).submit(spec(), SCRIPT, USER, {}))

    async def scenario():
        watcher = CentreWatcher(alpha, interval=1, fast_interval=0.2, timeout=30)
        job = SlurmJob(alpha, USER, JobOwner("10st10st", USER), client=watcher.client,
                       backlog=CancelBacklog(str(tmp_path / "state"), fed, 30), watcher=watcher, job_id=job_id)
        assert job_id in watcher.tracked
        started = time.monotonic()
        outcome = await job.cancel(confirm_timeout=3)
        took = time.monotonic() - started
        tracked = set(watcher.tracked)
        watcher._stopping = True  # the hanging squeue ends with the test; do not wait for it
        return outcome, took, tracked

    outcome, took, tracked = asyncio.run(scenario())
    assert outcome == "unconfirmed" and took < 6, (outcome, took)
    assert job_id not in tracked
    wait_for(lambda: all(j["job_id"] != job_id for j in live_jobs(centres, "alpha")), 20, "scancel to take")


def test_a_command_that_cannot_run_means_the_centre_is_not_answering():
    """Defect B5: a route error other than a timeout (a missing binary, permission denied) escaped."""
    for argv in (["/nonexistent/ssh"], ["/etc/passwd"]):
        with pytest.raises(SchedulerUnreachable, match="could not be run"):
            asyncio.run(_run_or_unreachable(argv, "the login node", 5, stdin=None, env={}))


def test_poll_says_starting_not_stopped_while_a_start_runs(centres, tmp_path):
    """Defect B7: poll() returned 0 (not running) during a start; JupyterHub's contract is None."""
    spawner = FederatedSpawner(config=Config(), user=SimpleNamespace(name=USER, url="/"),
                               federation_file=str(centres.federation_file), state_dir=str(tmp_path / "state"))
    assert asyncio.run(spawner.poll()) == 0  # nothing started, nothing running
    spawner._starting = True
    assert asyncio.run(spawner.poll()) is None


def _backlog_file(tmp_path) -> Path:
    return tmp_path / "state" / "owed-cancels.json"


def test_owed_scancels_added_during_a_retry_are_kept(centres, tmp_path):
    """Defect B3: entries added while a retry pass ran were dropped. The centre here is a login
    node that refuses connections (a closed port): every scancel is owed."""
    closed = federation_variant(centres, "closed.yaml", lambda doc: centre_entry(doc, "beta")["scheduler"].update(
        port=1))
    backlog = CancelBacklog(str(tmp_path / "state"), load_federation(closed), 30, timeout=5)
    backlog.add("beta", "111", USER)

    async def scenario():
        retry = asyncio.ensure_future(backlog.retry_once())
        await asyncio.sleep(0)  # the pass has started and is waiting on ssh
        backlog.add("beta", "222", USER)
        return await retry

    assert asyncio.run(scenario()) == 2
    assert [e["job_id"] for e in json.loads(_backlog_file(tmp_path).read_text())] == ["111", "222"]
    assert _backlog_file(tmp_path).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_an_owed_scancel_that_can_never_succeed_is_set_aside_and_does_not_block_the_others(centres, tmp_path):
    """Defect B3: one entry whose login no longer exists blocked every later entry."""
    fed = load_federation(centres.federation_file)
    job_id = asyncio.run(SlurmClient(fed.centre("alpha")).submit(spec(), SCRIPT, USER, {}))
    backlog = CancelBacklog(str(tmp_path / "state"), fed, 30)
    backlog.add("alpha", "999999", "gone-user")  # its login was deleted meanwhile
    backlog.add("nowhere", "5", USER)  # its centre left the federation
    backlog.add("alpha", job_id, USER)
    assert asyncio.run(backlog.retry_once()) == 0
    wait_for(lambda: all(j["job_id"] != job_id for j in live_jobs(centres, "alpha")), 20, "the owed job to end")
    aside = json.loads((tmp_path / "state" / SET_ASIDE_NAME).read_text())
    assert [(a["entry"]["job_id"], a["why"].split(":")[0]) for a in aside] == [
        ("999999", "the login cannot be used"), ("5", "centre 'nowhere' is no longer in the federation file")]


@pytest.mark.parametrize("content", ["42", "{\"centre\": \"alpha\"}", "not json", "[1, {\"job_id\": \"7\"}]"])
def test_an_owed_scancel_file_of_the_wrong_shape_is_set_aside_not_fatal(centres, tmp_path, content):
    """Defect B3: a backlog file of the wrong shape broke every spawner."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    _backlog_file(tmp_path).write_text(content)
    backlog = CancelBacklog(str(state), load_federation(centres.federation_file), 30)
    assert backlog.entries == []
    kept = list(state.glob("owed-cancels.json.unreadable-*")) + list(state.glob(SET_ASIDE_NAME))
    assert kept, os.listdir(state)  # what was there is kept for the operator, not deleted
    backlog.add("alpha", "1", USER)  # and the backlog works again
    assert json.loads(_backlog_file(tmp_path).read_text())[0]["job_id"] == "1"


def test_account_lookups_are_cached_not_repeated_for_every_command():
    """Defect B7: getpwnam and getgrouplist ran on the event loop for every scheduler command.
    Now one lookup per login serves CACHE_SECONDS of commands: deleting the account right after a
    lookup is seen only when the cache entry expires."""
    import subprocess
    from fedhub import logins, runtime
    from fedhub_testbed.centres import ensure_unix_user
    ensure_unix_user("fhcache1")
    first = logins.local_account("fhcache1")
    subprocess.run(["userdel", "-r", "fhcache1"], check=True, capture_output=True)
    assert logins.local_account("fhcache1") == first  # served from the cache, NSS not asked
    runtime.current().accounts.pop("fhcache1")  # what CACHE_SECONDS later does
    assert logins.local_account("fhcache1") is None
