"""The operator's job hook (c.FederatedSpawner.modify_job_hook): what it may change, and the
clear refusal of what it may not."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from fedhub.federation import parse_federation
from fedhub.jobs.server import JobHookError, JobSubmission, apply_job_hook
from fedhub.slurm.commands import JobSpec
from helpers.federations import GOOD


def submission() -> JobSubmission:
    centre = parse_federation(GOOD).centres[0]
    spec = JobSpec(name="fedhub-abc", partition="cpu", cores=1, memory_mb=1024, walltime_s=3600,
                   comment="fedhub:alice::x")
    return JobSubmission(spec, "#!/bin/bash\nexec server\n", {"JUPYTERHUB_USER": "alice"}, centre)


def run(hook, job=None):
    return asyncio.run(apply_job_hook(hook, object(), job or submission()))


def test_no_hook_leaves_the_job_as_it_was():
    job = submission()
    assert run(None, job) is job


def test_a_hook_changes_the_job_in_place_or_returns_a_new_one():
    def in_place(spawner, job):
        job.env["JUPYTERHUB_SITE"] = "x"
        job.spec = replace(job.spec, cores=2)

    changed = run(in_place)
    assert changed.env["JUPYTERHUB_SITE"] == "x" and changed.spec.cores == 2

    async def returns(spawner, job):
        return replace(job, script=job.script.replace("exec server", "module load x\nexec server"))

    assert "module load x" in run(returns).script


@pytest.mark.parametrize("hook,words", [
    (lambda s, j: replace(j, spec=replace(j.spec, name="other")), "changed the job's name or comment"),
    (lambda s, j: replace(j, spec=replace(j.spec, comment="fedhub:bob::y")), "changed the job's name or comment"),
    (lambda s, j: "#!/bin/bash", "returned str; return the JobSubmission"),
    (lambda s, j: replace(j, env={"A": 1}), "env a dict of text to text"),
    (lambda s, j: replace(j, env={**j.env, "SCRATCH": "/x"}), "set SCRATCH: a job's variables must be named JUPYTERHUB_*"),
])
def test_a_hook_that_breaks_the_job_is_refused_by_name(hook, words):
    with pytest.raises(JobHookError, match="modify_job_hook") as e:
        run(hook)
    assert words in str(e.value)
