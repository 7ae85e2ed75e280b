"""Files carried between two centres' workspaces (issue 25, the transfer underneath): the
workspace agent runs as the user's own login at both ends, at alpha (local) and at the firewalled
beta (on its login node, over the hub's kind of ssh connection), and the bytes pass through this
process as they would through the hub. The test centres still share /home (issue 25 gives them
homes of their own), so beta's workspace is another folder here."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
from dataclasses import replace
from pathlib import Path

import pytest

from fedhub.federation import Workspace, load_federation
from fedhub.slurm.sshmux import SshMasters
from fedhub.workspace.transfer import End, TransferError, carry
from helpers.testbed import TEST_USERS

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
    alpha = fed.centre("alpha")
    beta = replace(fed.centre("beta"), workspace=Workspace(folder="fedhub-at-beta"))
    home = Path(pwd.getpwnam(USER).pw_dir)
    yield End(alpha, USER), End(beta, USER), home / alpha.workspace.folder, home / "fedhub-at-beta"
    asyncio.run(SshMasters.close_all())
    for folder in (home / alpha.workspace.folder, home / "fedhub-at-beta"):
        shutil.rmtree(folder, ignore_errors=True)


def test_files_travel_as_the_user_from_a_local_centre_to_one_behind_its_login_node(ends):
    alpha, beta, at_alpha, at_beta = ends
    owned(at_alpha / "work" / "analysis.ipynb", b'{"cells": []}')
    owned(at_alpha / "data.bin", os.urandom(5 * 1024 * 1024))
    seen = []
    result = asyncio.run(carry(alpha, beta, ["work/analysis.ipynb", "data.bin"], seen.append))
    assert result == {"files": 2, "bytes": 5 * 1024 * 1024 + 13}
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
