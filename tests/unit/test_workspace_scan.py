"""A workspace as the hub's index sees it (fedhub_lab/workspace/scan.py, standard library only,
imported from the source tree): plain files with size and SHA-256,
links and foreign names skipped by name, hashes reused while a file is unchanged."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import time
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "extensions/fedhub_lab"


@pytest.fixture(scope="module")
def scanner():
    """The module as the notebook environment has it (its package from the source tree)."""
    sys.path.insert(0, str(LAB))
    try:
        return importlib.import_module("fedhub_lab.workspace.scan")
    finally:
        sys.path.remove(str(LAB))


def test_plain_files_are_listed_with_their_hash_and_links_and_foreign_names_are_skipped(scanner, tmp_path):
    home = tmp_path / "home"
    root = home / "fedhub"
    (root / "work").mkdir(parents=True)
    (root / "work" / "analysis.ipynb").write_text('{"cells": []}')
    (root / "data.bin").write_bytes(os.urandom(5000))
    (tmp_path / "secret.txt").write_text("outside the workspace")
    (root / "out").symlink_to(tmp_path / "secret.txt")
    (root / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    (root / "work" / ".ipynb_checkpoints").mkdir()  # Jupyter's, each server its own
    (root / "work" / ".ipynb_checkpoints" / "analysis-checkpoint.ipynb").write_text("{}")
    (root / "work" / ".arriving.bin.fedhub-partial").write_bytes(b"half")  # a transfer under way
    found = scanner.scan(root, home)
    assert set(found["files"]) == {"work/analysis.ipynb", "data.bin"}
    assert found["files"]["data.bin"]["sha256"] == hashlib.sha256((root / "data.bin").read_bytes()).hexdigest()
    reasons = {s["path"]: s["reason"] for s in found["skipped"]}
    assert reasons["out"] == reasons["elsewhere"] == "a link (not followed)"
    assert reasons["caf\\udce9.txt"].startswith("a name that is not UTF-8")
    cache = home / ".fedhub" / "workspace-hashes.json"
    assert oct(cache.stat().st_mode & 0o777) == "0o600"

    # a rescan reads only what changed: an unchanged file's hash comes from the cache
    calls = []
    real = scanner.sha256_of  # a spy on the hashing the scan does (the real function runs)
    scanner.sha256_of = lambda path: calls.append(path.name) or real(path)
    try:
        (root / "work" / "analysis.ipynb").write_text('{"cells": [1]}')
        again = scanner.scan(root, home)
    finally:
        scanner.sha256_of = real
    assert calls == ["analysis.ipynb"]
    assert again["files"]["data.bin"] == found["files"]["data.bin"]
    assert scanner.scan(home / "none", home) == {"files": {}, "skipped": []}


def test_what_arrived_of_a_copy_never_started_again_is_removed_after_a_week_and_not_before(scanner, tmp_path):
    home = tmp_path / "home"
    (home / "fedhub" / "data").mkdir(parents=True)
    fresh = home / "fedhub" / "data" / ".big.bin.0123456789abcdef.fedhub-partial"
    stale = home / "fedhub" / ".old.bin.fedcba9876543210.fedhub-partial"
    for partial in (fresh, stale):
        partial.write_bytes(b"what arrived before the cut")
    week_ago = time.time() - scanner.PARTIAL_KEPT_S - 60
    os.utime(stale, (week_ago, week_ago))
    assert scanner.scan(home / "fedhub", home)["files"] == {}
    assert fresh.exists() and not stale.exists()


def test_the_agent_scans_sends_and_receives_between_two_homes_as_the_hub_runs_it(tmp_path):
    """The agent as the hub runs it at two centres (here two homes on this machine): a scan, a
    tar from one, unpacked into the other, the same bytes; a path out of the workspace refused."""
    import json
    import subprocess
    import sys

    alpha, gamma = tmp_path / "alpha", tmp_path / "gamma"
    (alpha / "fedhub" / "work").mkdir(parents=True)
    (alpha / "fedhub" / "work" / "analysis.ipynb").write_text('{"cells": []}')
    (alpha / "fedhub" / "big.bin").write_bytes(os.urandom(300_000))
    gamma.mkdir()
    package = LAB

    def agent(home: Path, *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fedhub_lab.workspace", *argv], input=stdin,
                              capture_output=True, env={"HOME": str(home), "PYTHONPATH": str(package)}, cwd=home)

    listed = json.loads(agent(alpha, "scan", "fedhub").stdout)
    assert set(listed["files"]) == {"work/analysis.ipynb", "big.bin"}
    tar = agent(alpha, "send", "fedhub", *listed["files"]).stdout
    got = agent(gamma, "receive", "fedhub", stdin=tar)
    arrived = json.loads(got.stdout)
    assert arrived["files"] == 2 and arrived["bytes"] == 300_000 + len('{"cells": []}'), got.stderr
    assert arrived["sha256"] == {p: f["sha256"] for p, f in listed["files"].items()}
    # the same files at gamma, with their times to the second (tar's own precision)
    whole_seconds = {p: {**f, "mtime": int(f["mtime"])} for p, f in listed["files"].items()}
    assert json.loads(agent(gamma, "scan", "fedhub").stdout)["files"] == whole_seconds
    # the scan's hash travels in the tar: bytes changed on the way are not kept at the receiver
    position = tar.index(b"FEDHUB.sha256")
    damaged = tar[:-20_000] + bytes(b ^ 1 for b in tar[-20_000:-19_000]) + tar[-19_000:]
    assert position < len(tar) - 20_000
    (gamma / "fedhub" / "big.bin").unlink()
    got = agent(gamma, "receive", "fedhub", stdin=damaged)
    assert got.returncode == 2 and "arrived damaged" in got.stderr.decode()
    assert not (gamma / "fedhub" / "big.bin").exists()
    assert not list((gamma / "fedhub").glob(".*partial"))
    # a version set aside and a deleted file, as staging asks before the newest arrives
    asked = {"rename": [["work/analysis.ipynb", "work/analysis (Gamma 2026-12-05 10:14).ipynb"]],
             "delete": ["gone.txt", "big.bin"]}
    done = agent(gamma, "arrange", "fedhub", stdin=json.dumps(asked).encode())
    assert json.loads(done.stdout) == {"renamed": 1, "deleted": 0}, done.stderr
    assert sorted(p.name for p in (gamma / "fedhub" / "work").iterdir()) == ["analysis (Gamma 2026-12-05 10:14).ipynb"]
    refused = agent(gamma, "arrange", "fedhub", stdin=b'{"delete": ["../.bashrc"]}')
    assert refused.returncode == 2 and "only paths inside" in refused.stderr.decode()
    refused = agent(alpha, "send", "fedhub", "../.bashrc")
    assert refused.returncode == 2 and "only paths inside" in refused.stderr.decode()
    refused = agent(alpha, "scan", "../elsewhere")
    assert refused.returncode == 2 and "refused:" in refused.stderr.decode()
