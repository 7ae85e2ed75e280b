"""Slurm argv builders and output parsers (pure, no cluster)."""

import shlex
from datetime import datetime

import pytest

from fedhub.federation import SshScheduler
from fedhub.slurm.commands import (
    JobSpec, UnreadableOutput, is_unreachable, parse_owned_jobs, parse_pending, parse_sbatch, parse_sinfo_nodes,
    parse_squeue, sbatch_argv, scancel_argv, slurm_message, squeue_argv,
)
from fedhub.slurm.owner import JobOwner, parse_comment
from fedhub.slurm.routes import SshRoute


def test_sbatch_argv_is_canonical():
    spec = JobSpec(name="fedhub-alice", partition="gpu", cores=4, memory_mb=2048, walltime_s=93600, gres="gpu:a100:2")
    assert sbatch_argv(spec) == [
        "sbatch", "--parsable", "--job-name=fedhub-alice", "--partition=gpu", "--nodes=1", "--ntasks=1",
        "--cpus-per-task=4", "--mem=2048M", "--time=1-02:00:00", "--output=fedhub-%j.log", "--export=ALL",
        "--gres=gpu:a100:2",
    ]
    assert sbatch_argv(spec, test_only=True)[:2] == ["sbatch", "--test-only"]


@pytest.mark.parametrize("change", [
    {"partition": "cpu --uid=0"}, {"partition": "cpu\n#SBATCH --x"}, {"name": "a b"}, {"cores": 0},
    {"cores": "4"}, {"memory_mb": True}, {"walltime_s": 30}, {"gres": "gpu:a100:1,mem"}, {"output": "/tmp/$(x)"},
    {"partition": "cpu\n"}, {"comment": "a b"}, {"charge_account": "proj;x"},
])
def test_sbatch_argv_refuses_anything_odd(change):
    base = dict(name="j", partition="cpu", cores=1, memory_mb=100, walltime_s=600)
    with pytest.raises(ValueError, match="refusing to pass"):
        sbatch_argv(JobSpec(**{**base, **change}))


def test_job_ids_are_checked():
    assert squeue_argv(["12", 13]) == ["squeue", "--noheader", "--states=all", "--jobs=12,13", "--format=%i|%T|%B|%S|%e|%r"]
    assert scancel_argv(["7"]) == ["scancel", "7"]
    for bad in (["1;reboot"], [], ["-1"]):
        with pytest.raises(ValueError):
            scancel_argv(bad)


def test_parse_sbatch():
    assert parse_sbatch("1234\n") == "1234"
    assert parse_sbatch("warning line\n1234;alpha\n") == "1234"
    with pytest.raises(UnreadableOutput, match="not a job id"):
        parse_sbatch("Submitted batch job\n")
    with pytest.raises(UnreadableOutput, match="no job id"):
        parse_sbatch("")


def test_parse_squeue_real_lines():
    # lines as printed by Slurm 22.05 on the test centres
    out = ("100000|RUNNING|alpha-n1|2026-11-24T15:53:19|2026-11-24T17:53:19|None\n"
           "100001|PENDING|n/a|2026-11-24T16:13:19|2026-11-24T18:13:19|Resources\n"
           "100002|PENDING|n/a|N/A|N/A|None\n"
           "100003|CANCELLED|alpha-n1|2026-11-24T15:53:19|2026-11-24T15:55:02|None\n"
           "100004|COMPLETING|alpha-n1|2026-11-24T15:53:19|2026-11-24T15:55:02|None\n")
    jobs = parse_squeue(out)
    assert jobs["100000"].is_running and jobs["100000"].node == "alpha-n1"
    assert jobs["100001"].is_pending and jobs["100001"].reason == "Resources"
    assert jobs["100001"].start_time == datetime(2026, 11, 24, 16, 13, 19)
    assert jobs["100000"].end_time == datetime(2026, 11, 24, 17, 53, 19)  # when its walltime ends
    assert jobs["100002"].start_time is None and jobs["100002"].end_time is None and jobs["100002"].reason == ""
    assert jobs["100003"].is_finished and jobs["100004"].is_finished
    held = parse_squeue("100005|PENDING|n/a|N/A|N/A|AssocGrpCPUMinutesLimit\n")["100005"]
    assert held.held_by_allocation and not jobs["100001"].held_by_allocation


def test_a_reason_with_the_separator_still_reads():
    """Defect B4c: a reason containing '|' made the line unreadable, and the job counted as gone."""
    jobs = parse_squeue("100006|PENDING|n/a|N/A|N/A|Held by admin: see |ticket 42|\n")
    assert jobs["100006"].is_pending and jobs["100006"].reason == "Held by admin: see |ticket 42|"


@pytest.mark.parametrize("line", ["100007||n/a|N/A|N/A|None", "100007| |n/a|N/A|N/A|None", "garbage", "100007|RUNNING",
                                  "100007|RUNNING|n/a|N/A|None"])
def test_squeue_output_that_does_not_read_is_an_error_not_an_ending(line):
    """Defect B4c: a line that does not parse used to be skipped, so its job looked gone."""
    with pytest.raises(UnreadableOutput):
        parse_squeue(f"100000|RUNNING|alpha-n1|N/A|N/A|None\n{line}\n")


def test_jobs_carry_their_hub_user_server_and_submission():
    owner = JobOwner("1a2b3c4d", "ann.o'neil@uni", "gpu run")
    comment = owner.comment("alpha", "abc123")
    assert owner.job_name == "fedhub-1a2b3c4d"
    assert parse_comment(comment) == {"kind": "server", "centre": "alpha", "hub_user": "ann.o'neil@uni", "server": "gpu run",
                                      "submission": "abc123"}
    spec = JobSpec(name=owner.job_name, partition="cpu", cores=1, memory_mb=100, walltime_s=600, comment=comment)
    assert f"--comment={comment}" in sbatch_argv(spec)  # quoted so Slurm's argv check accepts it
    (job,) = parse_owned_jobs(f"FH0123456789abcdef200001|alice|PENDING|2026-11-24T15:53:19|{comment}FH0123456789abcdef\n",
                              "FH0123456789abcdef")
    assert (job.job_id, job.login, job.state, parse_comment(job.comment)["server"]) == \
        ("200001", "alice", "PENDING", "gpu run")


def test_parse_sinfo_merges_partitions_of_a_node():
    out = ("alpha-n1|cpu*|mixed|2/2/0/4|127.0.0.1|8192|5120|(null)\n"
           "alpha-n1|debug|mixed|2/2/0/4|127.0.0.1|8192|5120|(null)\n"
           "gpu-n1|gpu|idle|0/8/0/8|10.0.0.9|65536|N/A|gpu:a100:4\n")
    node, gpu = parse_sinfo_nodes(out)
    assert node.partitions == ("cpu", "debug")
    assert (node.cpus_allocated, node.cpus_idle, node.cpus_total, node.address) == (2, 2, 4, "127.0.0.1")
    assert (node.memory_mb, node.free_memory_mb, node.gres) == (8192, 5120, "")
    assert (gpu.gres, gpu.free_memory_mb) == ("gpu:a100:4", 0)
    assert parse_pending("1|cpu\n2|cpu\n") == 2


def test_unreachable_and_refusal_messages():
    assert is_unreachable("slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n")
    refused = "sbatch: error: Batch job submission failed: Requested node configuration is not available\n"
    assert not is_unreachable(refused)
    assert slurm_message(refused) == "Requested node configuration is not available"


def test_ssh_argv_quotes_every_word_and_sends_only_named_env():
    route = SshRoute(SshScheduler(host="login.example", port=2222, key_file="/k", known_hosts_file="/kh",
                                  query_user="fedhub"))
    argv = ["sbatch", "--job-name=a b", "--partition=x;y"]
    full = route.ssh_argv(shlex.join(argv), "alice", ["JUPYTERHUB_API_TOKEN"])
    assert full[:7] == ["ssh", "-F", "/dev/null", "-i", "/k", "-p", "2222"]
    assert "SendEnv=JUPYTERHUB_API_TOKEN" in full and "StrictHostKeyChecking=yes" in full
    assert "UserKnownHostsFile=/kh" in full and not any("accept-new" in w for w in full)
    assert full[-4:-1] == ["alice", "login.example", "--"]
    # the login node's shell splits the remote command back into exactly the same words
    assert shlex.split(full[-1]) == argv
    for bad in ("alice;reboot", "root", "alice\n"):
        with pytest.raises(ValueError):
            route.ssh_argv(shlex.join(argv), bad, [])


def test_a_comment_cannot_forge_a_row_of_this_hubs_jobs():
    """Issue 21, finding 5: a centre user's job carries this hub's name and a comment with a
    newline and a forged row (another login's job, a FedHub comment). Only framed rows count, so
    the forged row is part of the attacker's comment and the login is the attacker's."""
    frame = "FH00112233445566ff"
    forged = "x\n900001|victim|RUNNING|2026-11-24T15:53:19|fedhub:server:alpha:victim::s1"
    out = f"{frame}200002|mallory|RUNNING|2026-11-24T15:53:19|{forged}{frame}\n"
    (job,) = parse_owned_jobs(out, frame)
    assert (job.job_id, job.login, job.comment) == ("200002", "mallory", forged)
    assert parse_comment(job.comment) is None
    for bad in (out + "900001|victim|RUNNING|2026-11-24T15:53:19|x\n", f"{frame}900001|victim|RUNNING|x|y\n",
                f"{frame}200002|Mallory Smith|RUNNING|2026-11-24T15:53:19|c{frame}\n"):
        with pytest.raises(UnreadableOutput):
            parse_owned_jobs(bad, frame)
