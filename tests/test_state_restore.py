"""Stored state of every version, loaded into a FederatedSpawner, finds its real job again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from helpers.testbed import TEST_USERS, live_jobs
from fedhub.spawning.spawner import FederatedSpawner
from fedhub.slurm.client import SlurmClient
from fedhub.slurm.commands import JobSpec
from fedhub.slurm.sshmux import SshMasters

USER = TEST_USERS[0]


def submit_sleeper(centres, centre_id: str) -> str:
    from fedhub.federation import load_federation
    centre = load_federation(centres.federation_file).centre(centre_id)
    spec = JobSpec(name="restore-test", partition=centre.partitions[0].name, cores=1, memory_mb=100, walltime_s=600)

    async def submit():
        try:
            return await SlurmClient(centre).submit(spec, "#!/bin/bash\nsleep 600\n", USER, {})
        finally:
            await SshMasters.close_all()
    return asyncio.run(submit())


def spawner_with_state(centres, state, legacy_centre=""):
    spawner = FederatedSpawner(config=Config(), user=SimpleNamespace(name=USER, url=f"/user/{USER}/"),
                               federation_file=str(centres.federation_file), legacy_centre=legacy_centre,
                               state_dir=str(centres.root / "state-restore"))
    spawner.load_state(state)
    return spawner


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_old_state_finds_its_job_and_notices_when_it_ends(centres, version):
    centre = "beta" if version in (1, 3) else "alpha"  # v1 and v3 through the ssh route
    job = submit_sleeper(centres, centre)
    state = {
        0: {"job_id": job, "job_status": "RUNNING alpha-n1"},
        1: {"child_conf": {"centre_id": "beta", "req_partition": "batch"}, "child_state": {"job_id": job}},
        2: {"version": 2, "centre": "alpha", "request": None, "child_conf": {}, "child_state": {"job_id": job}},
        3: {"version": 3, "centre": "beta", "request": None, "job": {"job_id": job, "login": USER, "submission": ""}},
    }[version]
    spawner = spawner_with_state(centres, state, legacy_centre="alpha" if version == 0 else "")
    assert spawner.centre.id == centre and spawner.job.job_id == job and spawner.job.login == USER
    # what it stores from now on is the current version
    assert spawner.get_state()["version"] == 3 and spawner.get_state()["job"]["job_id"] == job

    async def scenario():
        alive = await spawner.poll()
        await spawner.stop()
        gone = await spawner.poll()
        await spawner.monitor.stop()
        await SshMasters.close_all()  # before asyncio.run closes the loop the masters belong to
        return alive, gone

    alive, gone = asyncio.run(scenario())
    assert alive is None  # running
    assert gone == 1  # Slurm says it has ended
    assert live_jobs(centres, centre, USER) == []


def test_batchspawner_state_without_legacy_centre_is_not_guessed(centres, caplog):
    spawner = spawner_with_state(centres, {"job_id": "4242"})
    assert spawner.job is None
    async def poll():
        try:
            return await spawner.poll()
        finally:
            await spawner.monitor.stop()
    assert asyncio.run(poll()) == 0
    assert "c.FederatedSpawner.legacy_centre" in caplog.text
