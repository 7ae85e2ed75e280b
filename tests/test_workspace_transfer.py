"""Files carried between two centres' workspaces (issue 25, the transfer underneath): the
workspace agent runs as the user's own login at both ends, at alpha (local) and at the firewalled
beta (on its login node, over the hub's kind of ssh connection), and the bytes pass through this
process as they would through the hub; then the same through the hub's REST API. Beta and gamma
have homes of their own (alpha's is this machine's): this process sees them where the test
federation keeps them, the users' jobs and logins there at /home."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
from pathlib import Path

import pytest

import requests

from fedhub.federation import load_federation
from fedhub.slurm.sshmux import SshMasters
from fedhub.workspace.transfer import End, TransferError, carry
from helpers.testbed import TEST_USERS, HubAPI, wait_for

USER = TEST_USERS[1]


def owned(path: Path, data: bytes, mode: int = 0o644) -> None:
    account = pwd.getpwnam(USER)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chown(path.parent, account.pw_uid, account.pw_gid)
    path.write_bytes(data)
    os.chown(path, account.pw_uid, account.pw_gid)
    os.chmod(path, mode)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ends(centres):
    import shutil
    fed = load_federation(centres.federation_file)  # ssh's control sockets: a private directory of this process
    alpha, beta = fed.centre("alpha"), fed.centre("beta")
    folders = [centres.centres[c].home_of(USER) / "fedhub" for c in ("alpha", "beta", "gamma")]
    yield End(alpha, USER), End(beta, USER), folders[0], folders[1]
    asyncio.run(SshMasters.close_all())
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def test_files_travel_as_the_user_from_a_local_centre_to_one_behind_its_login_node(ends):
    alpha, beta, at_alpha, at_beta = ends
    owned(at_alpha / "work" / "analysis.ipynb", b'{"cells": []}')
    owned(at_alpha / "data.bin", os.urandom(5 * 1024 * 1024))
    seen = []
    result = asyncio.run(carry(alpha, beta, ["work/analysis.ipynb", "data.bin"], seen.append))
    assert (result["files"], result["bytes"]) == (2, 5 * 1024 * 1024 + 13)
    assert result["sha256"] == {name: sha(at_alpha / name) for name in ("work/analysis.ipynb", "data.bin")}
    for name in ("work/analysis.ipynb", "data.bin"):
        arrived = at_beta / name
        assert sha(arrived) == sha(at_alpha / name)
        assert arrived.stat().st_uid == pwd.getpwnam(USER).pw_uid  # written by the user's own login
    assert seen and seen[-1] >= 5 * 1024 * 1024 and seen == sorted(seen)  # progress, block by block

    # and back, from beta to alpha, after beta changed a file
    owned(at_beta / "work" / "analysis.ipynb", b'{"cells": ["at beta"]}')
    assert asyncio.run(carry(beta, alpha, ["work/analysis.ipynb"]))["files"] == 1
    assert (at_alpha / "work" / "analysis.ipynb").read_bytes() == b'{"cells": ["at beta"]}'


def test_a_path_out_of_the_workspace_is_refused_and_a_cut_leaves_nothing_half_written(ends):
    alpha, beta, at_alpha, at_beta = ends
    owned(at_alpha / "first.bin", os.urandom(2 * 1024 * 1024))
    owned(at_alpha / "locked.txt", b"the user cannot read this", mode=0o000)
    with pytest.raises(TransferError) as info:
        asyncio.run(carry(alpha, beta, ["../.bashrc"]))
    assert "Alpha" in str(info.value) and "only paths inside" in str(info.value)
    # the source fails on its second file: the first arrived whole, nothing of the second
    with pytest.raises(TransferError) as info:
        asyncio.run(carry(alpha, beta, ["first.bin", "locked.txt"]))
    assert "could not send" in str(info.value) and "Permission denied" in str(info.value)
    assert sha(at_beta / "first.bin") == sha(at_alpha / "first.bin")
    assert sorted(p.name for p in at_beta.iterdir()) == ["first.bin"]


def test_a_user_moves_files_between_centres_through_the_rest_api_and_nobody_else_may(hub, centres, ends):
    alpha, beta, at_alpha, at_beta = ends
    at_gamma = centres.centres["gamma"].home_of(USER) / "fedhub"
    owned(at_alpha / "runs" / "run1.csv", b"x,y\n" * 10_000)
    owned(at_alpha / "runs" / "plots" / "fig.png", os.urandom(100_000))
    owned(at_alpha / "elsewhere.txt", b"not asked for")
    api = HubAPI(hub)
    mine = {"Authorization": f"token {api.post(f'/users/{USER}/tokens', json={'note': 'transfers'}).json()['token']}"}
    url = f"{hub.url}/hub/api/fedhub/users/{USER}/transfers"
    # the hub keeps a session's transfers: an earlier test's move of this user may have carried a file
    earlier = {t["id"] for t in requests.get(url, headers=mine, timeout=30).json()["transfers"]}
    r = requests.post(url, json={"from": "alpha", "to": "gamma", "paths": ["runs/"]}, headers=mine, timeout=30)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["url"].endswith(f"/transfers/{started['id']}") and started["status"] in ("queued", "copying")

    def finished():
        t = requests.get(f"{hub.url}{started['url']}", headers=mine, timeout=30).json()
        return t if t["status"] in ("done", "failed", "cancelled") else None
    done = wait_for(finished, 60, "the transfer to finish", 0.3)
    assert (done["status"], done["files"], done["total"]) == ("done", 2, 40_000 + 100_000), done
    for name in ("runs/run1.csv", "runs/plots/fig.png"):
        assert sha(at_gamma / name) == sha(at_alpha / name)
    assert not (at_gamma / "elsewhere.txt").exists()
    listed = [t["id"] for t in requests.get(url, headers=mine, timeout=30).json()["transfers"]]
    assert [t for t in listed if t not in earlier] == [started["id"]]

    # what a script gets wrong is named; another user sees and starts nothing of USER's
    for body, field in (({"from": "atlantis", "to": "gamma", "paths": ["runs/"]}, "from"),
                        ({"from": "alpha", "to": "alpha", "paths": ["runs/"]}, "to"),
                        ({"from": "alpha", "to": "gamma", "paths": ["../.ssh/id_rsa"]}, "paths"),
                        ({"from": "alpha", "to": "gamma", "paths": "/etc/passwd"}, "paths")):
        r = requests.post(url, json=body, headers=mine, timeout=30)
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    other = TEST_USERS[2]
    theirs = {"Authorization": f"token {api.post(f'/users/{other}/tokens', json={'note': 'transfers'}).json()['token']}"}
    for refused in (requests.post(url, json={"from": "alpha", "to": "gamma", "paths": ["runs/"]}, headers=theirs,
                                  timeout=30),
                    requests.get(f"{hub.url}{started['url']}", headers=theirs, timeout=30),
                    requests.delete(f"{hub.url}{started['url']}", headers=theirs, timeout=30),
                    requests.get(url, headers=theirs, timeout=30)):
        assert refused.status_code == 403 and f"may not see or move {USER}'s files" in refused.json()["message"]
    # a link in the workspace is never followed, out of it or not
    secret = at_alpha.parent / "outside-secret.txt"
    owned(secret, b"not in the workspace")
    (at_alpha / "escape").symlink_to(secret)
    r = requests.post(url, json={"from": "alpha", "to": "gamma", "paths": ["escape"]}, headers=mine, timeout=30)
    failed = wait_for(lambda: (t := requests.get(f"{hub.url}{r.json()['url']}", headers=mine, timeout=30).json())
                      ["status"] in ("done", "failed") and t, 60, "the transfer to fail", 0.3)
    assert failed["status"] == "failed" and "'escape' is not carried: a link (not followed)" in failed["reason"]
    assert not (at_gamma / "escape").exists()
    secret.unlink()
    # a path that is not there fails by name, nothing copied
    r = requests.post(url, json={"from": "alpha", "to": "gamma", "paths": ["missing/"]}, headers=mine, timeout=30)
    failed = wait_for(lambda: (t := requests.get(f"{hub.url}{r.json()['url']}", headers=mine, timeout=30).json())
                      ["status"] in ("done", "failed") and t, 60, "the transfer to fail", 0.3)
    assert failed["status"] == "failed" and "'missing' is not in your workspace there" in failed["reason"], failed


def test_a_transfer_cut_midway_goes_on_from_where_it_stopped_and_a_cancel_leaves_nothing(hub, centres, ends):
    """500 MB from the firewalled beta to gamma, both behind their login nodes. The cut is made by
    killing the sending agent at beta (as a login node's restart or a dropped connection would end
    it): the hub tries again and sends only the rest."""
    import subprocess
    alpha, beta, at_alpha, at_beta = ends
    at_gamma = centres.centres["gamma"].home_of(USER) / "fedhub"
    big = at_beta / "data" / "big.bin"
    owned(big, os.urandom(500 * 1024 * 1024))
    api = HubAPI(hub)
    mine = {"Authorization": f"token {api.post(f'/users/{USER}/tokens', json={'note': 'resume'}).json()['token']}"}
    url = f"{hub.url}/hub/api/fedhub/users/{USER}/transfers"

    def status(started):
        return requests.get(f"{hub.url}{started['url']}", headers=mine, timeout=30).json()

    started = requests.post(url, json={"from": "beta", "to": "gamma", "paths": ["data"]}, headers=mine,
                            timeout=30).json()
    halfway = wait_for(lambda: (t := status(started))["bytes"] > 200 * 1024 * 1024 or t["status"] != "copying" and
                       t["status"] != "queued" and t, 120, "half of the transfer", 0.1)
    assert halfway is True or halfway["status"] == "copying", halfway
    assert subprocess.run(["pkill", "-KILL", "-u", USER, "-f", "fedhub_lab.workspace send"]).returncode == 0
    done = wait_for(lambda: (t := status(started))["status"] in ("done", "failed", "cancelled") and t, 180,
                    "the transfer to end", 0.3)
    assert done["status"] == "done", done
    assert done["files"] == 1 and done["bytes"] == done["total"] == 500 * 1024 * 1024
    assert 200 * 1024 * 1024 - 2 * 1024 * 1024 < done["resumed"] < 500 * 1024 * 1024, done  # not sent twice
    assert sha(at_gamma / "data" / "big.bin") == sha(big)
    assert not list(at_gamma.rglob("*fedhub-partial"))

    # a cancel midway: the target keeps neither the file nor what arrived of it
    started = requests.post(url, json={"from": "beta", "to": "alpha", "paths": ["data/big.bin"]}, headers=mine,
                            timeout=30).json()
    assert wait_for(lambda: (t := status(started))["bytes"] > 100 * 1024 * 1024 or t["status"] in ("done", "failed")
                    and t, 120, "a fifth of the transfer", 0.1) is True
    assert requests.delete(f"{hub.url}{started['url']}", headers=mine, timeout=30).status_code in (200, 202, 204)
    wait_for(lambda: status(started)["status"] == "cancelled", 60, "the cancel")
    wait_for(lambda: not list(at_alpha.rglob("*fedhub-partial")), 30, "the partial file to be removed")
    assert not (at_alpha / "data" / "big.bin").exists()


def test_a_copy_that_would_exceed_the_storage_limit_is_refused_before_it_starts(hub, centres, ends):
    """gamma limits each user's storage to 1 GiB, measured by its accounting's storage command (the
    figures of the quota panel); the user already holds 950 MiB there."""
    import subprocess
    alpha, beta, at_alpha, at_beta = ends
    at_gamma = centres.centres["gamma"].home_of(USER) / "fedhub"
    held = centres.centres["gamma"].scratch / USER / "held.bin"
    subprocess.run(["truncate", "-s", str(950 * 1024 * 1024), str(held)], check=True)
    try:
        owned(at_alpha / "data" / "run.bin", os.urandom(120 * 1024 * 1024))
        api = HubAPI(hub)
        mine = {"Authorization": f"token {api.post(f'/users/{USER}/tokens', json={'note': 'room'}).json()['token']}"}
        r = requests.post(f"{hub.url}/hub/api/fedhub/users/{USER}/transfers",
                          json={"from": "alpha", "to": "gamma", "paths": ["data"]}, headers=mine, timeout=30)
        assert r.status_code == 202, r.text
        done = wait_for(lambda: (t := requests.get(f"{hub.url}{r.json()['url']}", headers=mine, timeout=30).json())
                        ["status"] in ("done", "failed") and t, 60, "the transfer to end", 0.3)
        assert (done["status"], done["code"], done["bytes"]) == ("failed", "storage_quota", 0), done
        assert done["reason"] == ("Gamma: this copy needs 126 MB more, but your storage there has "
                                  "78 MB left of 1.1 GB; free some space there or copy fewer files"), done
        assert not (at_gamma / "data").exists()
    finally:
        held.unlink()
