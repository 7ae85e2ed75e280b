"""Moving a running kernel, with its variables, to another centre: through the notebook server's
API, as the lab and scripts do, with real kernels and real Slurm jobs at the centres.

The user's server runs at alpha. A kernel beside it (python3) holds a small notebook's state;
it moves to gamma, and a kernel at gamma moves on to the firewalled beta. After each move every
value's digest is the same, shared references stay shared, the execution count continues and no
job is left at the source. Objects that cannot move are listed before the switch; failures and
cancels leave the source as it was and nothing at the target.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from helpers.testbed import JOBENV, TEST_USERS, HubAPI, blocker, live_jobs, slurm, wait_for
from helpers.hostile import HostileHome
from helpers.moves import NOTEBOOK, Server

USER, OTHER = TEST_USERS[1], TEST_USERS[0]

@pytest.fixture(scope="module")
def server(hub):
    api = HubAPI(hub)
    r = api.spawn(USER, {"centre": "alpha", "cores": 1, "memory": "2G", "walltime": "00:40:00"})
    assert r.status_code in (201, 202), r.text
    api.wait_ready(USER, 90)
    token = api.post(f"/users/{USER}/tokens", json={"note": "move tests"}).json()["token"]
    yield Server(hub, USER, token)
    api.stop(USER)


@pytest.fixture
def scratch(server, centres):
    """A directory in the host's /tmp, where the server's kernel at alpha writes (gone at gamma)."""
    path = f"/tmp/fedhub-move-{secrets.token_hex(4)}"
    yield path
    shutil.rmtree(path, ignore_errors=True)
    Path(f"/home/{USER}/fedhub-move-notes.txt").unlink(missing_ok=True)
    Path(f"/home/{USER}/fedhub/move-reading.txt").unlink(missing_ok=True)
    (centres.centres["gamma"].home_of(USER) / "fedhub" / "move-reading.txt").unlink(missing_ok=True)


@pytest.fixture
def notebook(server, scratch):
    """A kernel beside the server holding the notebook's state."""
    kernel = server.start_kernel("python3")
    server.run(kernel, f"import os; os.makedirs({scratch!r})")
    for cell in NOTEBOOK:
        server.run(kernel, cell)
    yield kernel
    for k in server.kernels():
        server.call("DELETE", f"api/kernels/{k}")


def test_a_kernel_moves_with_its_variables_to_another_centre_and_on(server, notebook, centres):
    before = server.digest(notebook)
    count = server.run(notebook, "pass")["execution_count"]
    session = server.call("POST", "api/sessions", json={"path": "move.ipynb", "name": "move.ipynb",
                                                        "type": "notebook", "kernel": {"id": notebook}}).json()
    console = server.call("POST", "api/sessions", json={"path": "console-1", "name": "Console 1",
                                                        "type": "console", "kernel": {"id": notebook}}).json()

    move = server.move(notebook, centre="gamma", memory="1G", walltime="00:20:00")
    assert move["url"].endswith(f"/fedhub/api/moves/{move['id']}") and move["kernel_id"] == notebook
    done = server.follow(move)
    assert done["status"] == "switched", done
    phases = [p["phase"] for p in done["phases"]]
    assert phases[:1] == ["queued"] and phases[-1] == "switched", phases
    assert {"saved", "copying", "restoring", "switching"} <= set(phases), phases
    assert done["saved_in"] > 0 and "variables (10.0 MB) in" in next(p["message"] for p in done["phases"]
                                                                     if p["phase"] == "saved"), done
    assert done["progress"]["done"] == done["progress"]["total"] > 10 * 1024 * 1024
    assert done["variables"] == 11 and done["unmovable"] == [], done  # n ratio d a b arr df square plus_n Greeter g
    moved = done["new_kernel_id"]

    # the notebook's session now uses the new kernel; the old one is gone, and so is nothing else
    assert server.call("GET", f"api/sessions/{session['id']}").json()["kernel"]["id"] == moved
    assert server.call("GET", f"api/sessions/{console['id']}").json()["kernel"]["id"] == moved
    assert server.kernels() == [moved]
    assert server.run(moved, "pass")["execution_count"] == count + 1  # the count continues
    assert server.digest(moved) == before
    assert server.where(moved) == "hello ada at gamma"
    # a function defined in the notebook still reads the notebook's variables, not a copy
    assert server.run(moved, "n = 100; print(plus_n(1)); n = 42")["stdout"] == "101\n"
    assert [j["job_id"] for j in live_jobs(centres, "gamma", USER)] != []

    # and on to the firewalled centre: the job at gamma ends with the move
    again = server.follow(server.move(moved, centre="beta", walltime="00:20:00"))
    assert again["status"] == "switched", again
    assert server.digest(again["new_kernel_id"]) == before
    assert server.where(again["new_kernel_id"]) == "hello ada at beta"
    wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the kernel's job at gamma to end")


def test_objects_that_cannot_move_are_listed_and_the_user_chooses(server, notebook, centres, scratch):
    # alpha gives each job its own /tmp, and gamma has a home of its own: neither file exists there
    server.run(notebook, f"data = open({scratch + '/data.csv'!r}, 'w+'); data.write('x\\n'); data.close()\n"
                         f"data = open({scratch + '/data.csv'!r})\n"
                         "notes = open(os.path.expanduser('~/fedhub-move-notes.txt'), 'w+')\n"
                         "notes.write('first\\nsecond\\n'); notes.close()\n"
                         "notes = open(os.path.expanduser('~/fedhub-move-notes.txt')); notes.readline()\n"
                         "import pathlib; pathlib.Path(os.path.expanduser('~/fedhub/move-reading.txt')).write_text('one\\ntwo\\n')\n"
                         "reading = open(os.path.expanduser('~/fedhub/move-reading.txt')); reading.readline()")
    server.run(notebook, "import socket, sqlite3, threading\n"
                         "sock = socket.socket()\n"
                         "gen = (i for i in range(3))\n"
                         "db = sqlite3.connect(':memory:')\n"
                         "log = open('/tmp/fedhub-move-log.txt', 'w')\n"
                         "worker = threading.Thread(target=print)\n"
                         "holder = {'lock': threading.Lock()}")
    move = server.follow(server.move(notebook, centre="gamma", memory="1G"), until=("choosing", "failed"))
    assert move["status"] == "choosing", move
    reasons = {u["name"]: u["reason"] for u in move["unmovable"]}
    assert set(reasons) == {"sock", "gen", "db", "log", "worker", "holder", "data", "notes"}, reasons
    assert reasons["data"] == (f"a file whose path {scratch}/data.csv does not exist at Gamma "
                               "(only files in your workspace are copied along)")
    assert reasons["notes"].startswith("a file whose path /home/") and reasons["notes"].endswith(
        "does not exist at Gamma (only files in your workspace are copied along)")  # "reading" is: it is copied
    assert reasons["sock"].startswith("an open socket")
    assert reasons["gen"].startswith("a running generator")
    assert reasons["db"].startswith("a database connection")
    assert reasons["log"].startswith("a file open for writing")
    assert reasons["worker"].startswith("a thread")
    assert reasons["holder"].startswith("cannot be copied (TypeError: cannot pickle '_thread.lock'")
    assert "cannot move (" in move["message"]

    # cancel: the source keeps everything, the target's job goes
    assert server.call("POST", f"fedhub/api/moves/{move['id']}/choice", json={"switch": False}).status_code == 200
    ended = server.follow(move)
    assert ended["status"] == "cancelled", ended
    assert server.kernels() == [notebook]
    assert server.run(notebook, "print(type(sock).__name__, next(gen))")["stdout"] == "socket 0\n"
    wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the target's job to end")

    # switch anyway: everything else moves, what could not is not faked at the target
    before = server.digest(notebook)
    move = server.follow(server.move(notebook, centre="gamma", memory="1G"), until=("choosing", "failed"))
    server.call("POST", f"fedhub/api/moves/{move['id']}/choice", json={"switch": True})
    done = server.follow(move)
    assert done["status"] == "switched", done
    moved = done["new_kernel_id"]
    assert server.digest(moved) == before
    assert server.run(moved, "print(sorted(k for k in ('sock', 'gen', 'db', 'log', 'worker', 'holder', 'data', "
                             "'notes') if k in globals()))")["stdout"] == "[]\n"
    assert server.run(moved, "print(sorted(k for k in ('os',) if k in globals()))")["stdout"] == "['os']\n"
    # the file of the workspace open for reading was copied to gamma and reopened where it was read to
    assert server.run(moved, "print(reading.readline().strip(), reading.name)")["stdout"] == \
        f"two /home/{USER}/fedhub/move-reading.txt\n"
    assert (centres.centres["gamma"].home_of(USER) / "fedhub" / "move-reading.txt").read_text() == "one\ntwo\n"


def test_a_module_missing_at_the_target_stops_the_move_before_anything_changes(server, notebook, centres, scratch):
    server.run(notebook, f"import sys, pathlib\n"
                         f"pathlib.Path({scratch!r}, 'helper_mod.py').write_text('class Point:\\n    def __init__(self, x):\\n"
                         f"        self.x = x\\n')\n"
                         f"sys.path.insert(0, {scratch!r})\nimport helper_mod\np = helper_mod.Point(3)")
    before = server.digest(notebook)
    failed = server.follow(server.move(notebook, centre="gamma", memory="1G"))
    assert failed["status"] == "failed", failed
    assert failed["error"] == "the environment at the target differs: helper_mod is not installed at Gamma", failed
    assert server.kernels() == [notebook] and server.digest(notebook) == before
    assert server.run(notebook, "print(p.x)")["stdout"] == "3\n"
    wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the target's job to end")


def test_a_move_to_a_centre_that_refuses_leaves_the_source_as_it_was(server, notebook, centres):
    before = server.digest(notebook)
    r = server.call("POST", f"fedhub/api/kernels/{notebook}/move", json={"centre": "gamma", "cores": 9})
    assert r.status_code == 400, r.text
    assert "cores: 9 is outside what partition 'small' at Gamma allows" in r.json()["message"], r.text
    assert server.call("GET", "fedhub/api/moves").json()["moves"] == [] or all(
        m["kernel_id"] != notebook for m in server.call("GET", "fedhub/api/moves").json()["moves"])
    assert server.kernels() == [notebook] and server.digest(notebook) == before
    assert live_jobs(centres, "gamma", USER) == []


def test_a_cell_run_after_the_snapshot_stops_the_switch(server, notebook, centres):
    server.run(notebook, "gen = (i for i in range(3))")  # so the move stops to ask, after its snapshot
    before = server.digest(notebook)
    move = server.follow(server.move(notebook, centre="gamma", memory="1G"), until=("choosing", "failed"))
    assert move["status"] == "choosing", move
    server.run(notebook, "n = n + 1")  # the user carries on at the source meanwhile
    server.call("POST", f"fedhub/api/moves/{move['id']}/choice", json={"switch": True})
    failed = server.follow(move)
    assert failed["status"] == "failed" and "a cell ran at the source" in failed["error"], failed
    assert server.kernels() == [notebook]
    assert server.digest(notebook) == {**before, "n": 43, "plus_n": 44}
    wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the target's job to end")


def test_bad_move_requests_name_the_field_and_other_users_get_403(server, notebook, hub):
    r = server.call("POST", f"fedhub/api/kernels/{notebook}/move", json={"centre": "gamma", "colour": "red"})
    assert r.status_code == 400 and "colour: unknown option" in r.json()["message"]
    r = server.call("POST", f"fedhub/api/kernels/{notebook}/move", json={})
    assert r.status_code == 400 and r.json()["message"].startswith("centre:")
    r = server.call("POST", "fedhub/api/kernels/00000000-0000-0000-0000-000000000000/move", json={"centre": "gamma"})
    assert r.status_code == 404
    other = HubAPI(hub).post(f"/users/{OTHER}/tokens", json={"note": "move tests"}).json()["token"]
    r = server.call("POST", f"fedhub/api/kernels/{notebook}/move", token=other, json={"centre": "gamma"})
    assert r.status_code == 403
    assert server.call("GET", "fedhub/api/moves", token=other).status_code == 403


def test_a_target_job_cancelled_in_the_queue_leaves_the_source_as_it_was(server, notebook, centres):
    full = blocker(centres, "gamma", 2, 30)  # gamma is busy: the target kernel waits in its queue
    try:
        before = server.digest(notebook)
        move = server.move(notebook, centre="gamma", memory="1G")
        queued = wait_for(lambda: (lambda m: m if "Pending at Gamma as job" in m["message"] else None)(
            server.call("GET", f"fedhub/api/moves/{move['id']}").json()), 60, "the target to queue", 0.3)
        assert queued["phase"] == "queued", queued
        (target,) = live_jobs(centres, "gamma", USER)
        slurm(centres, "gamma", "scancel", target["job_id"])
        failed = server.follow(move)
        assert failed["status"] == "failed", failed
        assert "did not start" in failed["error"] and "CANCELLED" in failed["error"], failed
        assert server.kernels() == [notebook] and server.digest(notebook) == before
        assert live_jobs(centres, "gamma", USER) == []
    finally:
        slurm(centres, "gamma", "scancel", full)


def test_a_copy_cut_off_midway_leaves_the_source_as_it_was(server, notebook, centres):
    """About 400 MB in 8 MB pieces to the firewalled beta; its job is cancelled after the third."""
    server.run(notebook, "big = np.random.default_rng(3).random(400 * 1024 * 1024 // 8)")
    before = server.run(notebook, "import hashlib\nprint(hashlib.sha256(big.tobytes()).hexdigest())")["stdout"]
    move = server.move(notebook, centre="beta", memory="2G")
    def past_third_piece():
        m = server.call("GET", f"fedhub/api/moves/{move['id']}").json()
        copied_three = m["phase"] == "copying" and m["progress"]["done"] >= 3 * 8 * 1024 * 1024
        return m if copied_three or m["status"] not in ("running", "choosing") else None
    copying = wait_for(past_third_piece, 120, "the copy to pass its third piece", 0.1)
    assert copying["phase"] == "copying" and copying["progress"]["done"] < copying["progress"]["total"], copying
    (target,) = live_jobs(centres, "beta", USER)
    slurm(centres, "beta", "scancel", target["job_id"])
    failed = server.follow(move, timeout=60)
    assert failed["status"] == "failed" and "ended" in failed["error"], failed
    assert failed["progress"]["done"] < failed["progress"]["total"], failed  # the copy stopped there
    assert server.kernels() == [notebook]
    assert server.run(notebook, "print(hashlib.sha256(big.tobytes()).hexdigest())")["stdout"] == before
    wait_for(lambda: live_jobs(centres, "beta", USER) == [], 30, "nothing left at beta")


def test_a_move_cancelled_while_its_target_waits_ends_the_target(server, notebook, centres):
    full = blocker(centres, "gamma", 2, 30)
    try:
        move = server.move(notebook, centre="gamma", memory="1G")
        wait_for(lambda: server.call("GET", f"fedhub/api/moves/{move['id']}").json()["phase"] == "queued"
                 and live_jobs(centres, "gamma", USER), 60, "the target's job to be queued", 0.3)
        assert server.call("DELETE", f"fedhub/api/moves/{move['id']}").status_code == 202
        ended = server.follow(move)
        assert ended["status"] == "cancelled" and ended["message"].startswith("Move cancelled"), ended
        assert live_jobs(centres, "gamma", USER) == [] and server.kernels() == [notebook]
    finally:
        slurm(centres, "gamma", "scancel", full)


def test_a_restore_that_fails_at_the_target_leaves_the_source_as_it_was(server, notebook, centres, scratch):
    # an object that pickles at the source but whose rebuilding needs a file only the source has
    # (alpha's jobs have their own /tmp)
    server.run(notebook, f"open({scratch + '/here.txt'!r}, 'w').close()\n"
                         "class Local:\n    def __reduce__(self):\n"
                         f"        return (open, ({scratch + '/here.txt'!r},))\n"
                         "odd = Local()")
    before = server.digest(notebook)
    failed = server.follow(server.move(notebook, centre="gamma", memory="1G"))
    assert failed["status"] == "failed", failed
    assert failed["error"].startswith("restoring at Gamma failed: FileNotFoundError"), failed
    assert server.kernels() == [notebook] and server.digest(notebook) == before
    wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the target's job to end")


def test_a_package_version_that_differs_at_the_target_stops_the_move(server, notebook, centres):
    """The same package in another version at the target could rebuild objects differently: the
    move stops before any byte is copied, naming both versions. (The centres here share one
    notebook environment, so the package installed for this test reports a version that
    depends on the centre it is imported at.)"""
    installed = Path(JOBENV) / "lib/python3.11/site-packages/fedhub_versioned.py"
    installed.write_text("import os\n__version__ = '2.0' if os.environ.get('SLURM_CLUSTER_NAME') == 'gamma' "
                         "else '1.0'\nclass Model:\n    pass\n")
    installed.chmod(0o644)
    try:
        server.run(notebook, "import fedhub_versioned\nmodel = fedhub_versioned.Model()")
        before = server.digest(notebook)
        failed = server.follow(server.move(notebook, centre="gamma", memory="1G"))
        assert failed["status"] == "failed", failed
        assert failed["error"] == ("the environment at the target differs: "
                                   "fedhub_versioned is 2.0 at Gamma but 1.0 at the source"), failed
        assert failed["progress"]["done"] == 0, failed  # nothing was copied
        assert server.kernels() == [notebook] and server.digest(notebook) == before
        assert server.run(notebook, "print(type(model).__name__)")["stdout"] == "Model\n"
        wait_for(lambda: live_jobs(centres, "gamma", USER) == [], 30, "the target's job to end")
    finally:
        installed.unlink(missing_ok=True)


SWITCHER = TEST_USERS[2]  # not USER: the module's server fixture runs USER's server until the end
FAIL_SECOND_SWITCH = '''
import os
from jupyter_server.services.sessions.sessionmanager import SessionManager
_update = SessionManager.update_session
_calls = {"n": 0}
async def _failing_second(self, session_id, **kwargs):
    marker = os.path.expanduser("~/fedhub-fail-second-switch")
    if "kernel_id" in kwargs and os.path.exists(marker):
        _calls["n"] += 1
        if _calls["n"] == 2:
            raise RuntimeError("injected: the second session's switch fails")
    return await _update(self, session_id, **kwargs)
SessionManager.update_session = _failing_second
'''


def test_a_switch_that_fails_between_two_sessions_leaves_both_on_the_source(hub, centres):
    """Issue 21, finding 7: the switch repoints the kernel's sessions one by one; when the second
    fails, the first is pointed back and the source kernel keeps running with its variables,
    the target ends, and no session is left on a kernel that is gone. The fault is injected in
    jupyter_server's own session manager through the user's server config (a real server cannot
    be made to fail there on its own); FedHub's code runs unchanged."""
    api = HubAPI(hub)
    with HostileHome(SWITCHER, FAIL_SECOND_SWITCH) as home:
        r = api.spawn(SWITCHER, {"centre": "alpha", "cores": 1, "memory": "2G", "walltime": "00:20:00"})
        assert r.status_code in (201, 202), r.text
        api.wait_ready(SWITCHER, 90)
        marker = home.home / "fedhub-fail-second-switch"
        try:
            token = api.post(f"/users/{SWITCHER}/tokens", json={"note": "switch test"}).json()["token"]
            server = Server(hub, SWITCHER, token)
            kernel = server.start_kernel("python3")
            server.run(kernel, "kept = 'still here'")
            sessions = [server.call("POST", "api/sessions", json={"path": f"s{i}.ipynb", "name": f"s{i}.ipynb",
                                                                   "type": "notebook", "kernel": {"id": kernel}}).json()
                        for i in (1, 2)]
            marker.write_text("")
            done = server.follow(server.move(kernel, centre="gamma", memory="1G", walltime="00:20:00"))
            assert done["status"] == "failed" and "injected" in done["error"], done
            now = {s["id"]: s["kernel"]["id"] for s in server.call("GET", "api/sessions").json()}
            assert now == {s["id"]: kernel for s in sessions}, now
            assert server.kernels() == [kernel]
            assert server.run(kernel, "print(kept)")["stdout"].strip() == "still here"
            wait_for(lambda: live_jobs(centres, "gamma", SWITCHER) == [], 30, "the target's job to end")
        finally:
            marker.unlink(missing_ok=True)
            api.stop(SWITCHER)
