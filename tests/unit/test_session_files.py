"""The files a continued session takes along (fedhub_lab/snapshots/files.py, standard library
only, loaded by its path as the notebook environment has it): chosen, compared by content,
carried as a tar stream, and refused when they would land outside the home. Two directories
stand for two centres' homes; issue 25 gives the test centres homes of their own."""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[2] / "extensions/fedhub_lab/fedhub_lab/snapshots/files.py"


@pytest.fixture(scope="module")
def files():
    spec = importlib.util.spec_from_file_location("fedhub_session_files_under_test", FILES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def homes(tmp_path):
    alpha, gamma = tmp_path / "alpha", tmp_path / "gamma"
    (alpha / "work").mkdir(parents=True)
    gamma.mkdir()
    (alpha / "work" / "analysis.ipynb").write_text('{"cells": []}')
    (alpha / "work" / "data.csv").write_bytes(b"x,y\n" * 1000)
    (alpha / "work" / ".hidden").write_text("not carried")
    (alpha / "work" / "sub").mkdir()
    (alpha / "work" / "sub" / "deep.txt").write_text("a sub-folder stays")
    (alpha / ".fedhub" / "sessions" / "ab12cd34").mkdir(parents=True)
    (alpha / ".fedhub" / "sessions" / "ab12cd34" / "0.state").write_bytes(os.urandom(3000))
    return alpha, gamma


class ReadOnly:
    """A stream with read() alone, as a continue's receiver hands read_tar the pieces that arrive."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.data.read(min(n, 5000) if n > 0 else n)  # in pieces, as they arrive


def carry(files, source: Path, target: Path, paths: list[str]) -> tuple[int, int]:
    stream = io.BytesIO()
    files.write_tar(source, paths, stream)
    return files.read_tar(target, ReadOnly(stream.getvalue()))


def test_the_documents_their_folder_and_the_snapshot_travel_and_arrive_the_same(files, homes):
    alpha, gamma = homes
    paths = files.session_paths(alpha, ["work/analysis.ipynb"], [".fedhub/sessions/ab12cd34"])
    assert sorted(paths) == [".fedhub/sessions/ab12cd34/0.state", "work/analysis.ipynb", "work/data.csv"]
    listed = files.listing(alpha, paths)
    assert files.lacking(gamma, listed) == paths
    count, size = carry(files, alpha, gamma, files.lacking(gamma, listed))
    assert count == 3 and size == sum(f["size"] for f in listed)
    assert files.lacking(gamma, listed) == []  # a second continue copies nothing
    for f in listed:
        assert files.sha256_of(gamma / f["path"]) == f["sha256"]
    assert not (gamma / "work" / "sub").exists() and not (gamma / "work" / ".hidden").exists()

    (alpha / "work" / "data.csv").write_bytes(b"changed\n")
    assert files.lacking(gamma, files.listing(alpha, paths)) == ["work/data.csv"]


def test_paths_out_of_the_home_are_refused_by_name(files, homes, tmp_path):
    alpha, _ = homes
    (tmp_path / "elsewhere.txt").write_text("someone else's")
    (alpha / "work" / "link").symlink_to(tmp_path / "elsewhere.txt")
    for bad in ("../elsewhere.txt", "/etc/passwd", "work/link", ""):
        with pytest.raises(files.FileRefused) as refused:
            files.inside(alpha, bad)
        assert repr(bad) in str(refused.value)


def test_a_stream_that_is_cut_or_hostile_leaves_nothing_half_written(files, homes, tmp_path):
    alpha, gamma = homes
    stream = io.BytesIO()
    files.write_tar(alpha, ["work/data.csv"], stream)
    cut = io.BytesIO(stream.getvalue()[:1500])  # the header and part of the data
    with pytest.raises(Exception):
        files.read_tar(gamma, cut)
    assert list(gamma.rglob("*.csv")) == [] and list(gamma.rglob("*fedhub-partial")) == []

    import tarfile
    hostile = io.BytesIO()
    with tarfile.open(fileobj=hostile, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    hostile.seek(0)
    with pytest.raises(files.FileRefused):
        files.read_tar(gamma, hostile)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_names_and_modes_a_plain_tar_header_cannot_hold_arrive_too(files, homes):
    """Most members get tar's short header; a long name, a name beyond ASCII and a file whose hash
    travels take the longer one, and every one arrives with its bytes, mode and time (to the second)."""
    alpha, gamma = homes
    names = ["work/" + "long-" * 25 + ".txt", "work/数据 café.csv", "work/plain.txt"]
    for i, name in enumerate(names):
        (alpha / name).write_bytes(os.urandom(1000 + i))
        os.chmod(alpha / name, 0o640 + i)
    stream = io.BytesIO()
    files.write_tar(alpha, names, stream, known_sha256=lambda relative, stat: (
        files.sha256_of(alpha / relative) if relative.endswith("plain.txt") else None))
    stream.seek(0)
    assert files.read_tar(gamma, stream) == (3, sum(1000 + i for i in range(3)))
    for name in names:
        there, here = (alpha / name).stat(), (gamma / name).stat()
        assert (gamma / name).read_bytes() == (alpha / name).read_bytes()
        assert (there.st_mode, int(there.st_mtime)) == (here.st_mode, here.st_mtime)


def test_a_cut_file_whose_hash_was_named_resumes_where_it_stopped_and_only_for_that_content(files, homes):
    alpha, gamma = homes
    big = alpha / "work" / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    sha = files.sha256_of(big)

    def known(relative, stat):
        return sha if relative == "work/big.bin" else None
    stream = io.BytesIO()
    files.write_tar(alpha, ["work/big.bin"], stream, known_sha256=known)
    with pytest.raises(Exception):
        files.read_tar(gamma, io.BytesIO(stream.getvalue()[:2 * 1024 * 1024]))  # cut after about 2 MB
    assert not (gamma / "work" / "big.bin").exists()  # nothing half-written in its place
    held = files.partials(gamma, {"work/big.bin": sha})
    assert 1024 * 1024 <= held["work/big.bin"] < 2 * 1024 * 1024  # the whole blocks that arrived
    assert files.partials(gamma, {"work/big.bin": "0" * 64}) == {}  # another content resumes nothing

    rest = io.BytesIO()
    sent = files.write_tar(alpha, ["work/big.bin"], rest, known_sha256=known,
                           resume={"work/big.bin": [held["work/big.bin"], sha]})
    assert sent == big.stat().st_size - held["work/big.bin"]  # only the rest travels
    rest.seek(0)
    arrived = {}
    assert files.read_tar(gamma, rest, arrived=arrived) == (1, big.stat().st_size)
    assert files.sha256_of(gamma / "work" / "big.bin") == sha == arrived["work/big.bin"]
    assert list(gamma.rglob("*fedhub-partial")) == []

    # a resume the receiver cannot honour (its partial gone) is refused by name, and a cancel forgets partials
    stream.seek(0)
    with pytest.raises(Exception):
        files.read_tar(gamma, io.BytesIO(stream.getvalue()[:2 * 1024 * 1024]))
    files.forget_partials(gamma, {"work/big.bin": sha})
    assert files.partials(gamma, {"work/big.bin": sha}) == {}
    resumed = io.BytesIO()
    files.write_tar(alpha, ["work/big.bin"], resumed, known_sha256=known, resume={"work/big.bin": [1000, sha]})
    resumed.seek(0)
    with pytest.raises(files.FileRefused) as refused:
        files.read_tar(gamma, resumed)
    assert "'work/big.bin'" in str(refused.value) and "resumed at byte 1000" in str(refused.value)
