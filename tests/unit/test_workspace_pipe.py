"""What the hub reads of a receiving agent (fedhub/workspace/transfer.py): progress lines, then
its answer; an answer longer than the hub takes is not kept. And where the lab's file browser
shows the workspace (fedhub_lab/workspace/where.py), so "Copy to Another Centre…" names the
right paths."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

from fedhub.workspace import transfer

WHERE = Path(__file__).resolve().parents[2] / "extensions/fedhub_lab/fedhub_lab/workspace/where.py"


def read(data: bytes, progress=None, chunk: int = 7) -> bytes:
    async def go():
        stream = asyncio.StreamReader()
        for i in range(0, len(data), chunk):  # lines split across reads, as a pipe delivers them
            stream.feed_data(data[i:i + chunk])
        stream.feed_eof()
        return await transfer._answered(stream, progress)
    return asyncio.run(go())


def test_progress_lines_come_before_the_answer_and_are_not_part_of_it():
    seen = []
    answer = {"files": 2, "bytes": 3000000, "sha256": {"a": "0" * 64}}
    out = read(b"#1048576\n#2097152\n" + json.dumps(answer).encode(), seen.append)
    assert seen == [1048576, 2097152]
    assert json.loads(out) == answer


def test_an_answer_longer_than_the_hub_takes_is_not_kept(monkeypatch):
    monkeypatch.setattr(transfer, "MOST_LISTED", 100)
    out = read(b"#5\n" + b'{"x": "' + b"y" * 500 + b'"}', chunk=64)
    try:
        json.loads(out)
        parsed = True
    except ValueError:
        parsed = False
    assert not parsed and len(out) <= 101


def test_the_file_browser_shows_the_workspace_at_its_root_inside_the_home_or_not_at_all(tmp_path):
    spec = importlib.util.spec_from_file_location("fedhub_lab_workspace_where_under_test", WHERE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    home = tmp_path / "home"
    (home / "fedhub").mkdir(parents=True)
    assert module.browser_prefix(str(home / "fedhub"), home, "fedhub") == ""
    assert module.browser_prefix(str(home), home, "fedhub") == "fedhub/"
    assert module.browser_prefix(str(tmp_path / "elsewhere"), home, "fedhub") is None
    assert module.browser_prefix(str(home), home, "") is None
