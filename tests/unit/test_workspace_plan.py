"""Files follow the user (issue 25): what the hub decides from its index of a user's workspace,
scan by scan: changes and deletes travel to the centres that did not make them, a file changed
at two centres keeps both versions under names every centre shares, large files are only listed,
and the federation file's workspace block is validated by field."""

import copy
from datetime import datetime

import pytest

from fedhub.federation import FederationError, parse_federation
from fedhub.workspace.plan import Action, Version, conflict_name, record, staging
from helpers.federations import GOOD

WHEN = datetime(2026, 12, 3, 10, 14)
NAMES = {"alpha": "Alpha Supercomputing Centre", "gamma": "Gamma University HPC"}
MB = 1024 * 1024


def v(sha: str, size: int = 10) -> Version:
    return Version(sha * 64, size, 0.0)


def kinds(actions: list[Action]) -> list[tuple[str, str, str]]:
    return [(a.kind, a.path, a.source) for a in actions]


def test_a_change_at_one_centre_is_fetched_at_the_next_and_nothing_else_moves():
    index = {}
    assert record(index, "alpha", {"a.ipynb": v("1"), "data.bin": v("2", 50 * MB)}, WHEN, NAMES["alpha"]) == []
    # gamma has nothing yet: both come, the big one only listed (over 40 MB here)
    assert kinds(staging(index, "gamma", {}, 40 * MB, NAMES, WHEN)) == [
        ("fetch", "a.ipynb", "alpha"), ("list", "data.bin", "alpha")]
    record(index, "gamma", {"a.ipynb": v("1")}, WHEN, NAMES["gamma"])
    # alpha already has the newest of everything: nothing to bring back there
    assert staging(index, "alpha", {"a.ipynb": v("1"), "data.bin": v("2", 50 * MB)}, 40 * MB, NAMES, WHEN) == []
    # gamma edits a.ipynb; alpha, which did not, gets it; gamma, which made it, does not
    record(index, "gamma", {"a.ipynb": v("3")}, WHEN, NAMES["gamma"])
    assert kinds(staging(index, "alpha", {"a.ipynb": v("1"), "data.bin": v("2", 50 * MB)}, 40 * MB, NAMES, WHEN)) \
        == [("fetch", "a.ipynb", "gamma")]
    assert staging(index, "gamma", {"a.ipynb": v("3")}, 40 * MB, NAMES, WHEN) == [
        Action("list", "data.bin", "alpha", "data.bin", v("2", 50 * MB))]


def test_a_file_changed_at_two_centres_keeps_both_under_the_same_names_everywhere():
    index = {}
    record(index, "alpha", {"analysis.ipynb": v("1")}, WHEN, NAMES["alpha"])
    record(index, "gamma", {"analysis.ipynb": v("1")}, WHEN, NAMES["gamma"])
    record(index, "gamma", {"analysis.ipynb": v("g")}, WHEN, NAMES["gamma"])  # gamma's edit, recorded first
    conflicts = record(index, "alpha", {"analysis.ipynb": v("a")}, WHEN, NAMES["alpha"])  # alpha's, later
    assert conflicts == [("analysis.ipynb", "analysis (Alpha 2026-12-03 10:14).ipynb")]
    # alpha (its own version renamed by the caller) gets gamma's under the name; gamma gets alpha's beside it
    assert kinds(staging(index, "alpha", {"analysis (Alpha 2026-12-03 10:14).ipynb": v("a")}, MB, NAMES, WHEN)) \
        == [("fetch", "analysis.ipynb", "gamma")]
    assert kinds(staging(index, "gamma", {"analysis.ipynb": v("g")}, MB, NAMES, WHEN)) == [
        ("fetch", "analysis (Alpha 2026-12-03 10:14).ipynb", "alpha")]


def test_a_change_never_recorded_is_set_aside_before_the_newest_arrives():
    index = {}
    record(index, "alpha", {"notes.txt": v("1")}, WHEN, NAMES["alpha"])
    record(index, "gamma", {"notes.txt": v("1")}, WHEN, NAMES["gamma"])
    record(index, "alpha", {"notes.txt": v("2")}, WHEN, NAMES["alpha"])
    # gamma's server died before its own edit was recorded: kept aside, then alpha's arrives
    assert kinds(staging(index, "gamma", {"notes.txt": v("x")}, MB, NAMES, WHEN)) == [
        ("rename", "notes (Gamma 2026-12-03 10:14).txt", "gamma"), ("fetch", "notes.txt", "alpha")]


def test_a_change_or_delete_made_only_here_stays_until_it_is_recorded():
    index = {}
    record(index, "alpha", {"notes.txt": v("1"), "old.txt": v("2")}, WHEN, NAMES["alpha"])
    record(index, "gamma", {"notes.txt": v("1"), "old.txt": v("2")}, WHEN, NAMES["gamma"])
    # gamma edited one and deleted the other since; nobody else changed them: nothing comes over it
    assert staging(index, "gamma", {"notes.txt": v("g")}, MB, NAMES, WHEN) == []
    record(index, "gamma", {"notes.txt": v("g")}, WHEN, NAMES["gamma"])
    assert kinds(staging(index, "alpha", {"notes.txt": v("1"), "old.txt": v("2")}, MB, NAMES, WHEN)) == [
        ("fetch", "notes.txt", "gamma"), ("delete", "old.txt", "")]


def test_a_delete_travels_unless_another_centre_changed_the_file_meanwhile():
    index = {}
    record(index, "alpha", {"old.py": v("1"), "kept.py": v("k")}, WHEN, NAMES["alpha"])
    record(index, "gamma", {"old.py": v("1"), "kept.py": v("k")}, WHEN, NAMES["gamma"])
    record(index, "alpha", {"kept.py": v("k")}, WHEN, NAMES["alpha"])  # old.py deleted at alpha
    assert kinds(staging(index, "gamma", {"old.py": v("1"), "kept.py": v("k")}, MB, NAMES, WHEN)) == [
        ("delete", "old.py", "")]
    # kept.py: gamma edits it while alpha deletes it: the edit wins and comes back to alpha
    record(index, "gamma", {"kept.py": v("e")}, WHEN, NAMES["gamma"])
    record(index, "alpha", {}, WHEN, NAMES["alpha"])
    assert kinds(staging(index, "alpha", {}, MB, NAMES, WHEN)) == [("fetch", "kept.py", "gamma")]


def test_conflict_names_keep_the_folder_and_the_suffix():
    assert conflict_name("work/analysis.ipynb", "Gamma University HPC", WHEN) == \
        "work/analysis (Gamma 2026-12-03 10:14).ipynb"
    assert conflict_name("Makefile", "Beta", WHEN) == "Makefile (Beta 2026-12-03 10:14)"
    assert conflict_name(".bashrc", "Beta", WHEN) == ".bashrc (Beta 2026-12-03 10:14)"
    assert conflict_name("data.tar.gz", "Beta", WHEN) == "data.tar (Beta 2026-12-03 10:14).gz"


def test_the_workspace_block_has_defaults_and_names_a_bad_field():
    fed = parse_federation(GOOD)
    assert (fed.centres[0].workspace.folder, fed.centres[0].workspace.show,
            fed.centres[0].workspace.large_file_mb) == ("fedhub", "workspace", 100)
    doc = copy.deepcopy(GOOD)
    doc["centres"][0]["workspace"] = {"folder": "work/fedhub", "show": "home", "large_file": "2G"}
    ws = parse_federation(doc).centres[0].workspace
    assert (ws.folder, ws.show, ws.large_file_mb) == ("work/fedhub", "home", 2048)
    for bad, field in (({"folder": "../elsewhere"}, "folder"), ({"folder": "/scratch"}, "folder"),
                       ({"show": "everything"}, "show"), ({"large_file": "huge"}, "large_file")):
        doc["centres"][0]["workspace"] = bad
        with pytest.raises(FederationError) as info:
            parse_federation(doc)
        assert f"centres[0].workspace.{field}:" in str(info.value), info.value


def test_the_index_is_kept_in_the_hubs_database_and_says_where_the_bytes_are(tmp_path):
    from sqlalchemy import create_engine

    from fedhub.workspace.index import WorkspaceIndex

    engine = create_engine(f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}")
    store = WorkspaceIndex(engine)
    index = store.load("alice")
    record(index, "alpha", {"a.ipynb": v("1"), "data.bin": v("2", 50 * MB)}, WHEN, NAMES["alpha"])
    record(index, "gamma", {"a.ipynb": v("1")}, WHEN, NAMES["gamma"])
    record(index, "gamma", {}, WHEN, NAMES["gamma"])  # a.ipynb deleted at gamma: a tombstone
    store.save("alice", index)
    store.save("bob", {})
    again = WorkspaceIndex(engine).load("alice")  # as a restarted hub reads it
    assert again == index and again["a.ipynb"].newest is None
    assert store.holdings("alice") == {"alpha": 50 * MB} and store.holdings("bob") == {}


def test_the_hub_keeps_only_so_much_of_what_an_agent_prints():
    """The agent runs as the user, who decides what it prints: the hub reads it all (the agent
    never blocks) and keeps at most the limit."""
    import asyncio

    from fedhub.workspace.transfer import said

    async def read(data: bytes, most: int) -> bytes:
        stream = asyncio.StreamReader()
        stream.feed_data(data)
        stream.feed_eof()
        kept = await said(stream, most)
        assert stream.at_eof()
        return kept

    assert asyncio.run(read(b"x" * (5 * MB), 1000)) == b"x" * 1000
    assert asyncio.run(read(b'{"files": 2}', 1000)) == b'{"files": 2}'


def test_the_job_script_makes_the_workspace_and_shows_it_unless_the_centre_shows_the_home(tmp_path):
    """The lines the server's job runs (bash, as at a centre): the workspace made 0700 if missing,
    the file browser's root unless the operator named one (notebook_dir) or the centre shows the home."""
    import os
    import subprocess
    from fedhub.jobs.server import fedhub_exports

    def run(show: str, root_dir: str = "") -> tuple[str, int]:
        doc = copy.deepcopy(GOOD)
        doc["centres"][0]["workspace"] = {"folder": "work/fedhub", "show": show}
        centre = parse_federation(doc).centre("north")
        home = tmp_path / show / ("named" if root_dir else "plain")
        home.mkdir(parents=True)
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", **({"JUPYTERHUB_ROOT_DIR": root_dir} if root_dir else {})}
        out = subprocess.run(["bash", "-euc", fedhub_exports(centre, "") + '\necho "${JUPYTERHUB_ROOT_DIR:-}"'],
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
        return out.replace(str(home), "~"), os.stat(home / "work" / "fedhub").st_mode & 0o777

    assert run("workspace") == ("~/work/fedhub", 0o700)
    assert run("workspace", "/srv/teaching") == ("/srv/teaching", 0o700)
    assert run("home") == ("", 0o700)
