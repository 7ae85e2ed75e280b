"""Tenants stay apart (issue 21): each test performs one attack of the audit against the real
hub, real Slurm and real notebook servers, and passes only because the attack is refused or
harmless. A student's server is the student's: its config is written into the student's home
before it starts, as a hostile student would."""

from __future__ import annotations

import pwd
import shutil
import time
from pathlib import Path

import pytest
import requests

from conftest import TEST_USERS, HubAPI, live_jobs, slurm, wait_for
from test_classes import a_class, contents, in_session, roster_state

STUDENT, OTHER, TEACHER = TEST_USERS
NOTEBOOK = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Day 1"}], "metadata": {},
            "nbformat": 4, "nbformat_minor": 5}
SPAWN = {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:20:00"}

# Logs every Authorization header the server receives (tornado's router sees every request).
RECORDER = '''
import os, tornado.web
_find = tornado.web.Application.find_handler
def _recording(self, request, **kw):
    header = request.headers.get("Authorization")
    if header:
        with open(os.path.expanduser("~/captured-headers"), "a") as f:
            f.write(header + "\\n")
    return _find(self, request, **kw)
tornado.web.Application.find_handler = _recording
'''

# A contents manager that lies in its listing of day1: entries whose reported paths leave the
# folder (forging another student's submission, reaching the teacher's home) and a folder that
# contains itself without end.
FORGER = '''
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.services.contents.filemanager import AsyncFileContentsManager

FORGED = {"name": "answer.ipynb", "path": "day1/../%(other)s/answer.ipynb", "type": "notebook"}
ESCAPE = {"name": "../../../planted.txt", "path": "day1/../../../planted.txt", "type": "file"}
UP = {"name": "..", "path": "day1/..", "type": "directory"}

def _entry(name, path, kind):
    return {"name": name, "path": path, "type": kind, "format": None, "mimetype": None, "content": None,
            "writable": True, "created": "2026-01-01T00:00:00Z", "last_modified": "2026-01-01T00:00:00Z",
            "size": None}

class Forger(AsyncLargeFileManager):
    async def get(self, path, content=True, type=None, format=None, **kw):
        path = path.strip("/")
        if path.startswith("day1/loop"):
            model = _entry(path.rsplit("/", 1)[1], path, "directory")
            if content:
                model.update(format="json", content=[_entry("loop", path + "/loop", "directory")])
            return model
        name = path.rsplit("/", 1)[-1]
        if name in ("answer.ipynb", "planted.txt"):  # however the URL reached here, it reports the forged path
            forged = FORGED if name == "answer.ipynb" else ESCAPE
            kind = forged["type"]
            model = _entry(name, forged["path"], kind)
            if content:
                model["format"] = "json" if kind == "notebook" else "text"
                model["content"] = ({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "forged"}],
                                     "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
                                    if kind == "notebook" else "planted by a student")
            return model
        model = await super().get(path, content=content, type=type, format=format, **kw)
        if path == "day1" and content:
            model["content"] = list(model["content"]) + [
                _entry(FORGED["name"], FORGED["path"], "notebook"), _entry(ESCAPE["name"], ESCAPE["path"], "file"),
                _entry(UP["name"], UP["path"], "directory"), _entry("loop", "day1/loop", "directory")]
        return model

c.ServerApp.contents_manager_class = Forger
'''


class HostileHome:
    """A user's ~/.jupyter/jupyter_server_config.py, written as that user would, removed after."""

    def __init__(self, user: str, config: str):
        self.user, self.config = user, config
        self.home = Path(pwd.getpwnam(user).pw_dir)

    def __enter__(self):
        entry = pwd.getpwnam(self.user)
        directory = self.home / ".jupyter"
        directory.mkdir(exist_ok=True)
        (directory / "jupyter_server_config.py").write_text(self.config)
        for path in (directory, directory / "jupyter_server_config.py"):
            shutil.chown(path, entry.pw_uid, entry.pw_gid)
        self.captured.unlink(missing_ok=True)
        return self

    @property
    def captured(self) -> Path:
        return self.home / "captured-headers"

    def tokens(self) -> set[str]:
        if not self.captured.exists():
            return set()
        return {line.split(None, 1)[1].strip() for line in self.captured.read_text().splitlines()
                if line.lower().startswith(("token ", "bearer "))}

    def __exit__(self, *exc):
        shutil.rmtree(self.home / ".jupyter", ignore_errors=True)
        self.captured.unlink(missing_ok=True)


@pytest.fixture
def teaching(hub):
    """Class hpc-t in session: TEACHER teaches STUDENT; every server stopped afterwards."""
    admin = HubAPI(hub)
    r = admin.session.put(admin.url("/fedhub/classes/hpc-t"), timeout=30, json=a_class("hpc-t", [TEACHER], [STUDENT]))
    assert r.status_code in (200, 201), r.text
    in_session(admin, "hpc-t")
    token = admin.post(f"/users/{TEACHER}/tokens", json={"note": "teacher"}).json()["token"]
    yield admin, token
    for user in TEST_USERS:
        admin.stop(user)
    admin.delete("/fedhub/classes/hpc-t")
    admin.delete("/groups/hpc-t")


def materials(hub, token: str, action: str, folder: str = "day1"):
    return requests.post(f"{hub.url}/services/fedhub-classes/api/classes/hpc-t/{action}", json={"folder": folder},
                         headers={"Authorization": f"token {token}"}, timeout=60)


def teacher_has_day1(hub, admin: HubAPI) -> None:
    key = admin.session.headers["Authorization"].split()[1]
    for path, body in (("day1", {"type": "directory"}),
                       ("day1/intro.ipynb", {"type": "notebook", "format": "json", "content": NOTEBOOK}),
                       ("notes.txt", {"type": "file", "format": "text", "content": "the teacher's own\n"})):
        assert contents(hub, key, TEACHER, path, "PUT", body).status_code in (200, 201)


def test_a_token_the_class_service_sends_to_a_students_server_opens_nothing_else(teaching, hub):
    """Finding 1: a student's server records the Authorization header of every request during a
    hand-out and a collection. Each recorded token is the student's own, opens only the
    student's server, is refused by the teacher's server and the hub's API beyond it, and no
    longer works once its minute (here the test hub's 15 s) is over."""
    admin, teacher_token = teaching
    key = admin.session.headers["Authorization"].split()[1]
    with HostileHome(STUDENT, RECORDER) as home:
        for user in (TEACHER, STUDENT, OTHER):
            assert admin.spawn(user, SPAWN).status_code in (201, 202)
        for user in (TEACHER, STUDENT, OTHER):
            admin.wait_ready(user, 90)
        teacher_has_day1(hub, admin)
        assert materials(hub, teacher_token, "handout").status_code == 202
        wait_for(lambda: contents(hub, key, STUDENT, "day1/intro.ipynb").status_code == 200, 30,
                 "the hand-out at the student's server")
        assert materials(hub, teacher_token, "collect").status_code == 202
        wait_for(lambda: contents(hub, key, TEACHER, f"collected/day1/{STUDENT}/intro.ipynb").status_code == 200, 30,
                 "the collection in the teacher's server")
        captured = home.tokens() - {key}  # the test's own admin requests are not the service's
        assert captured, "the recorder saw no token from the class service"
        for token in captured:
            who = requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
            assert who.status_code == 200 and who.json()["name"] == STUDENT, who.text
            # the server, and JupyterHub's implicit scopes to know whose token it is
            assert set(who.json()["scopes"]) <= {f"access:servers!server={STUDENT}/", f"read:users:name!user={STUDENT}",
                                                 f"read:users:groups!user={STUDENT}"}, who.json()["scopes"]
            for user in (TEACHER, OTHER):
                r = admin.through_proxy(user, "api/contents", token=token)
                assert r.status_code == 403, (user, r.status_code)
            for path in ("/users", f"/users/{TEACHER}", f"/users/{OTHER}/tokens", "/groups", "/fedhub/classes"):
                r = requests.get(f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {token}"}, timeout=30)
                assert r.status_code in (403, 404) or r.json() in ([], {"classes": []}), (path, r.status_code, r.text)
            r = requests.post(f"{hub.url}/hub/api/users/{OTHER}/server", headers={"Authorization": f"token {token}"},
                              json=SPAWN, timeout=30)
            assert r.status_code in (403, 404), r.text
        time.sleep(16)
        for token in captured:
            r = requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
            assert r.status_code == 403, f"a recorded token still works after its lifetime: {r.text}"


def test_paths_a_students_server_reports_cannot_leave_the_collected_folder(teaching, hub):
    """Finding 3: a student's server lists, inside day1, entries whose paths point at another
    student's collected copy (``day1/../<other>/answer.ipynb``), at the teacher's home
    (``day1/../../../planted.txt``), at the folder above, and a folder that contains itself
    without end. The collection copies the student's real file only; nothing is written outside
    collected/day1/<student>/, and the courier is not held by the endless folder."""
    admin, teacher_token = teaching
    key = admin.session.headers["Authorization"].split()[1]
    with HostileHome(STUDENT, FORGER % {"other": OTHER}):
        for user in (TEACHER, STUDENT):
            assert admin.spawn(user, SPAWN).status_code in (201, 202)
        for user in (TEACHER, STUDENT):
            admin.wait_ready(user, 90)
        teacher_has_day1(hub, admin)
        assert materials(hub, teacher_token, "handout").status_code == 202
        wait_for(lambda: contents(hub, key, STUDENT, "day1/intro.ipynb").status_code == 200, 30,
                 "the hand-out at the student's server")
        assert materials(hub, teacher_token, "collect").status_code == 202
        wait_for(lambda: contents(hub, key, TEACHER, f"collected/day1/{STUDENT}/intro.ipynb").status_code == 200, 30,
                 "the student's real file collected")
        # whatever the server answers lands in the student's own collected folder, nowhere else
        assert [entry["name"] for entry in contents(hub, key, TEACHER, "collected/day1").json()["content"]] == [STUDENT]
        assert contents(hub, key, TEACHER, "collected").json()["content"][0]["name"] == "day1"
        assert contents(hub, key, TEACHER, f"collected/day1/{OTHER}/answer.ipynb").status_code == 404
        assert contents(hub, key, TEACHER, "planted.txt").status_code == 404
        assert contents(hub, key, TEACHER, "notes.txt").json()["content"] == "the teacher's own\n"
        assert not (Path(pwd.getpwnam(TEACHER).pw_dir).parent / "planted.txt").exists()
        # the roster says the collection was made, not stuck on the endless folder
        wait_for(lambda: roster_state(hub, teacher_token, "hpc-t", STUDENT)["materials"] == "has day1; collected day1",
                 20, "the dashboard to say day1 was collected")
    # the operator's log names what was left out and why
    log = hub.log_file.read_text(errors="replace")
    assert "which is not a plain file name" in log and "is deeper than 16 folders" in log


def as_user(centres, centre: str, user: str, *argv: str) -> str:
    """A Slurm command run at a centre as another real Unix user (not root), as they would."""
    entry = pwd.getpwnam(user)
    command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *argv]
    run = centres.centres[centre].run(command, cwd="/tmp")
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_a_forged_row_in_a_job_comment_cancels_nobody_elses_job(api, hub, centres):
    """Finding 5: a centre user (OTHER) submits a job under this hub's job name whose comment
    holds a newline and a forged squeue row naming STUDENT's job with a FedHub comment. The
    sweep, which cancels this hub's jobs that no server knows, must not cancel STUDENT's job;
    it still cancels a job of OTHER's own that looks like a forgotten FedHub job (so the test
    knows the sweep ran), and only as OTHER."""
    assert api.spawn(TEACHER, SPAWN).status_code in (201, 202)  # the hub's sweep is under way
    api.wait_ready(TEACHER, 90)
    hub_id = (hub.state_dir / "hub-id").read_text().strip()
    victim = as_user(centres, "alpha", STUDENT, "sbatch", "--parsable", "--partition=cpu", "--time=10",
                     "--output=/dev/null", "--job-name=analysis", "--wrap", "sleep 600")
    forged_row = f"{victim}|{STUDENT}|RUNNING|2026-12-01T10:00:00|fedhub:server:alpha:{STUDENT}::s{victim}"
    forger = as_user(centres, "alpha", OTHER, "sbatch", "--parsable", "--partition=cpu", "--time=10",
                     "--output=/dev/null", f"--job-name=fedhub-{hub_id}", f"--comment=x\n{forged_row}",
                     "--wrap", "sleep 600")
    lookalike = as_user(centres, "alpha", OTHER, "sbatch", "--parsable", "--partition=cpu", "--time=10",
                        "--output=/dev/null", f"--job-name=fedhub-{hub_id}",
                        f"--comment=fedhub:server:alpha:{OTHER}::s0", "--wrap", "sleep 600")
    try:
        listed = centres.centres["alpha"].run(["squeue", "--noheader", f"--jobs={forger}", "--format=%k"]).stdout
        assert forged_row in listed, "Slurm kept the newline in the comment (the attack's premise)"
        wait_for(lambda: not any(j["job_id"] == lookalike for j in live_jobs(centres, "alpha")), 60,
                 "the sweep to cancel the look-alike job", 1)
        time.sleep(6)  # one more sweep
        alive = {j["job_id"]: j["user"] for j in live_jobs(centres, "alpha")}
        assert alive.get(victim) == STUDENT, f"{STUDENT}'s own job was cancelled by the sweep"
        assert alive.get(forger) == OTHER  # not FedHub's comment: left to its owner
        assert f"Sweep: cancelled job {lookalike} at alpha (login {OTHER}" in hub.log_tail(400)
        assert f"cancelled job {victim}" not in hub.log_tail(400)
    finally:
        slurm(centres, "alpha", "scancel", victim, forger, lookalike)
