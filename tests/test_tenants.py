"""Tenants stay apart (issue 21): each test performs one attack of the audit against the real
hub, real Slurm and real notebook servers, and passes only because the attack is refused or
harmless. A student's server is the student's: its config is written into the student's home
before it starts, as a hostile student would."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from helpers.testbed import TEST_USERS, HubAPI, blocker, live_jobs, slurm, wait_for
from helpers.hostile import HostileHome
from helpers.classes import a_class, contents, in_session, roster_state

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


@pytest.fixture
def teaching(hub):
    """Class hpc-t in session: TEACHER teaches STUDENT; every server stopped afterwards. The
    homes start without what earlier tests handed out or collected (homes outlive tests)."""
    for user in TEST_USERS:
        home = Path(pwd.getpwnam(user).pw_dir) / "fedhub"  # the workspace: the servers' file browser
        for leftover in ("day1", "collected", "notes.txt"):
            shutil.rmtree(home / leftover, ignore_errors=True)
            (home / leftover).unlink(missing_ok=True) if (home / leftover).is_file() else None
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


def hand_out_and_collect(hub, admin: HubAPI, teacher_token: str, users: tuple[str, ...]) -> None:
    """Start ``users``' servers at alpha, give the teacher day1, hand it out and collect it (the
    student's intro.ipynb reaches the teacher's collected/day1/<student>/)."""
    key = admin.session.headers["Authorization"].split()[1]
    for user in users:
        assert admin.spawn(user, SPAWN).status_code in (201, 202)
    for user in users:
        admin.wait_ready(user, 90)
    teacher_has_day1(hub, admin)
    assert materials(hub, teacher_token, "handout").status_code == 202
    wait_for(lambda: contents(hub, key, STUDENT, "day1/intro.ipynb").status_code == 200, 30,
             "the hand-out at the student's server")
    assert materials(hub, teacher_token, "collect").status_code == 202
    wait_for(lambda: contents(hub, key, TEACHER, f"collected/day1/{STUDENT}/intro.ipynb").status_code == 200, 30,
             "the student's copy in the teacher's server")


def test_a_token_the_class_service_sends_to_a_students_server_opens_nothing_else(teaching, hub):
    """Finding 1: a student's server records the Authorization header of every request during a
    hand-out and a collection. Each recorded token is the student's own, opens only the
    student's server, is refused by the teacher's server and the hub's API beyond it, and no
    longer works once its minute (here the test hub's 15 s) is over."""
    admin, teacher_token = teaching
    key = admin.session.headers["Authorization"].split()[1]
    with HostileHome(STUDENT, RECORDER) as home:
        hand_out_and_collect(hub, admin, teacher_token, (TEACHER, STUDENT, OTHER))
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
        # every recorded token is refused by the end of the lifetime of the newest (15 s and a second)
        def still_working():
            return [token for token in captured if requests.get(
                f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30).status_code != 403]
        wait_for(lambda: not still_working(), 16, "every recorded token to expire with its lifetime", 1)


def test_paths_a_students_server_reports_cannot_leave_the_collected_folder(teaching, hub):
    """Finding 3: a student's server lists, inside day1, entries whose paths point at another
    student's collected copy (``day1/../<other>/answer.ipynb``), at the teacher's home
    (``day1/../../../planted.txt``), at the folder above, and a folder that contains itself
    without end. The collection copies the student's real file only; nothing is written outside
    collected/day1/<student>/, and the courier is not held by the endless folder."""
    admin, teacher_token = teaching
    key = admin.session.headers["Authorization"].split()[1]
    with HostileHome(STUDENT, FORGER % {"other": OTHER}):
        hand_out_and_collect(hub, admin, teacher_token, (TEACHER, STUDENT))
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


def test_an_ssh_socket_directory_another_user_made_first_stops_the_hub(centres):
    """Finding 6: the hub's ssh control sockets live in its state directory. Another real Unix
    user who makes that directory first (or one left open to others) would receive the hub's
    ssh sessions and the tokens they carry: the hub refuses to start and says why."""
    from fedhub_testbed.hub import LocalHub
    from helpers.testbed import HUB_CONFIG
    top = Path(tempfile.mkdtemp(dir=centres.root))
    os.chmod(top, 0o755)
    workdir = top / "hub"
    (workdir / "state").mkdir(parents=True)
    os.chmod(workdir / "state", 0o1777)  # a directory others can write to, as a careless volume might be
    attacker = pwd.getpwnam(OTHER)
    subprocess.run(["setpriv", f"--reuid={attacker.pw_uid}", f"--regid={attacker.pw_gid}", "--clear-groups",
                    "mkdir", "-m", "0777", str(workdir / "state" / "ssh")], check=True)
    hub = LocalHub(centres.federation_file, workdir, config_file=HUB_CONFIG)
    with pytest.raises(RuntimeError) as refused:
        hub.start(timeout=30)
    assert f"belongs to uid {attacker.pw_uid}, not to the hub's uid 0" in str(refused.value)
    # the hub's own directory, but open to others: refused too, naming the fix
    from fedhub.slurm.sshmux import SocketDirError, use_state_dir
    own = top / "own"
    (own / "ssh").mkdir(parents=True, mode=0o755)
    os.chmod(own / "ssh", 0o755)
    with pytest.raises(SocketDirError, match=r"has mode 0755.*chmod 700"):
        use_state_dir(str(own))


def test_a_port_another_user_holds_on_the_hubs_host_is_not_forwarded_to(centres):
    """Finding 6: a forward from the hub's loopback to a server behind a login node is made only
    on a port nobody else holds; a port another real Unix user listens on is refused with the
    reason, so the proxy never routes a user's requests (cookies, tokens) to that listener."""
    from fedhub.federation import load_federation
    from fedhub.slurm.sshmux import ForwardError, SshMasters
    from fedhub.slurm.tunnels import free_local_port
    beta = load_federation(centres.federation_file).centre("beta")
    port = free_local_port()
    attacker = pwd.getpwnam(OTHER)
    squatter = subprocess.Popen(["setpriv", f"--reuid={attacker.pw_uid}", f"--regid={attacker.pw_gid}",
                                 "--clear-groups", sys.executable, "-c",
                                 f"import socket,time; s=socket.socket(); s.bind(('0.0.0.0', {port})); s.listen(); "
                                 "print('up', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout.readline().strip() == "up"

        async def scenario():
            master = SshMasters.get(beta.scheduler, beta.scheduler.query_user)
            try:
                with pytest.raises(ForwardError) as refused:
                    await master.add_forward("L", f"127.0.0.1:{port}:beta-n1:22")
                return str(refused.value), set(master.forwards)
            finally:
                await SshMasters.close_all()
        message, forwards = asyncio.run(scenario())
        assert f"port {port} on the hub's host is held by another process" in message
        assert forwards == set()
    finally:
        squatter.kill()


def test_a_teacher_loses_a_student_who_left_the_class_within_a_minute(teaching, hub):
    """Finding 8: a class whose teachers open their students' labs. Once the student is removed
    from the class's group (JupyterHub's own group API, as an admin or the provider would), the
    teacher's token is refused at the student's server with no roster viewed, within the class
    service's next look (2 s here) and the server's access recheck (10 s here, 30 s by default)."""
    admin, teacher_token = teaching
    current = admin.get("/fedhub/classes/hpc-t").json()
    r = admin.session.put(admin.url("/fedhub/classes/hpc-t"), json={**current, "teachers_open_labs": True}, timeout=30)
    assert r.status_code == 200, r.text
    assert admin.spawn(STUDENT, SPAWN).status_code in (201, 202)
    admin.wait_ready(STUDENT, 90)
    status = f"{hub.url}/user/{STUDENT}/api/status"
    teacher = {"Authorization": f"token {teacher_token}"}
    assert requests.get(status, headers=teacher, timeout=30).status_code == 200  # the server now knows the token
    r = admin.session.delete(admin.url("/groups/hpc-t/users"), json={"users": [STUDENT]}, timeout=30)
    assert r.status_code == 200, r.text
    left = time.monotonic()
    wait_for(lambda: requests.get(status, headers=teacher, timeout=30).status_code == 403, 30,
             "the student's server to refuse the teacher", 1)
    assert time.monotonic() - left < 2 + 10 + 8  # the service's interval, the server's recheck, slack for a busy machine
    assert f"access:servers!user={STUDENT}" not in set(
        requests.get(f"{hub.url}/hub/api/user", headers=teacher, timeout=30).json()["scopes"])


def test_the_class_dashboard_shows_a_hostile_username_as_text(browser):
    """Finding 10: a username holding HTML and quotes is shown as text on the class dashboard, in
    a real Chromium: no element of it is made and no script of it runs (the prefix and the xsrf
    value are escaped for the page's script too)."""
    from fedhub.classes.service import dashboard_page
    name = '<img src=x onerror="window.pwned=1">"</strong><script>window.pwned=2</script>'
    prefix = '/services/fedhub-classes/"</script><script>window.pwned=3</script>'
    page = browser.new_page()
    page.set_content(dashboard_page(name, prefix, 'x"</script><script>window.pwned=4</script>'))
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0  # only the hub's logo
    assert page.locator("nav span.me-1").first.text_content() == name  # the hub's user menu, as text


def test_a_claim_cannot_take_the_template_login_of_someone_who_never_logged_in(unix_users, tmp_path):
    """Finding 2: alice's provider claims the login 'bob' at a centre whose template makes each
    hub user's login from their name. bob (a real Unix account there) has never logged in to
    this hub; the claim is refused all the same, naming why, and alice keeps her own login."""
    from fedhub import claims
    from fedhub.federation import parse_federation
    from fedhub.logins import NoLogin, login_at
    from helpers.federations import GOOD
    north = dict(GOOD["centres"][0], logins={"template": "{username}", "claim": "centre_logins"})
    centre = parse_federation({**GOOD, "centres": [north]}).centres[0]
    claims.configure(tmp_path)
    try:
        claims.record("alice", {"centre_logins": {"north": "bob"}})
        assert not claims.known("bob")
        with pytest.raises(NoLogin, match="that login belongs to another user"):
            login_at(centre, "alice")
        claims.record("alice", {"centre_logins": {"north": "alice"}})
        assert login_at(centre, "alice") == "alice"
    finally:
        claims.configure(None)


def test_a_teacher_can_neither_reserve_nor_charge_beyond_the_admins_caps(teaching, hub, centres):
    """Finding 4: a teacher who is not an admin tries to make the hub reserve most of a centre,
    charge another project, plan many long sessions, and start a student's server with resources
    of their own choosing. Each is a 403 naming the field and the cap, no reservation appears at
    the centre, and the student's server starts only as the class's (its partition and project)."""
    admin, teacher_token = teaching
    teacher = HubAPI(hub, teacher_token)
    current = teacher.get("/fedhub/classes/hpc-t").json()
    assert current["limits"]["centres"] == {"alpha": {"partitions": ["cpu"], "projects": [], "reservations": []},
                                            "gamma": {"partitions": ["small"], "projects": [], "reservations": []}}

    def put(**changes):
        return teacher.session.put(teacher.url("/fedhub/classes/hpc-t"), json={**current, **changes}, timeout=30)
    huge = [{"centre": "alpha", "partition": "cpu", "reservation": {"create": {"nodes": 10000}}}]
    r = put(centres=huge)
    assert r.status_code == 403 and r.json()["field"] == "centres[0].reservation.create.nodes", r.text
    assert "10000 nodes is more than this class may reserve (0); ask an admin" in r.json()["message"]
    r = put(centres=[{"centre": "alpha", "partition": "cpu", "project": "proj_fhtest2"}])
    assert r.status_code == 403 and "'proj_fhtest2' is not a project this class may charge at alpha (none)" \
        in r.json()["message"], r.text
    r = put(centres=[{"centre": "alpha", "partition": "debug"}])
    assert r.status_code == 403 and r.json()["field"] == "centres[0].partition", r.text
    day = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    long_week = [{"start": (day + timedelta(days=i)).isoformat(), "end": (day + timedelta(days=i, hours=23)).isoformat()}
                 for i in range(5)]
    r = put(sessions=long_week)
    assert r.status_code == 403 and "more than the 40 hours a week this class may have" in r.json()["message"], r.text
    far = [{"start": (day + timedelta(days=400)).isoformat(), "end": (day + timedelta(days=400, hours=2)).isoformat()}]
    r = put(sessions=far)
    assert r.status_code == 403 and r.json()["field"] == "sessions[0].start", r.text
    assert "fedhub-hpc-t" not in slurm(centres, "alpha", "scontrol", "show", "reservation")
    # within the caps a teacher still plans the class
    r = put(title="Renamed", centres=[{"centre": "alpha", "partition": "cpu"}])
    assert r.status_code == 200, r.text
    # a student's server started by the teacher: only as the class's start
    r = teacher.spawn(STUDENT, {"centre": "alpha", "partition": "cpu", "cores": 4, "memory": "4G"})
    refused = r.json()["message"] if r.status_code >= 400 else teacher.progress(STUDENT)[-1]
    assert f"{TEACHER} may start {STUDENT}'s server only as a start for a class they teach" in refused, refused
    wait_for(lambda: admin.server(STUDENT) is None, 20, "the refused start to leave no record")
    assert live_jobs(centres, "alpha", STUDENT) == []
    r = teacher.spawn(STUDENT, {"class": "hpc-t"})
    assert r.status_code in (201, 202), r.text
    admin.wait_ready(STUDENT, 90)
    (job,) = live_jobs(centres, "alpha", STUDENT)
    assert job["partition"] == "cpu" and job["cpus"] == "1"


def test_a_jobs_environment_and_script_as_the_centre_stores_them_hold_no_secret(api, hub, centres):
    """Finding 10: alpha stores every job's environment and script in its accounting
    (AccountingStoreFlags=job_script,job_env), where a centre's staff and tools read them. The
    server's token reaches the job through a file only the user can read, which the job removes
    as it starts; neither sacct's environment nor its script holds the token."""
    home = Path(pwd.getpwnam(STUDENT).pw_dir)
    waiting = home / ".fedhub" / "secrets"
    before = set(waiting.iterdir()) if waiting.exists() else set()
    assert api.spawn(STUDENT, SPAWN).status_code in (201, 202)
    api.wait_ready(STUDENT, 90)
    (job,) = live_jobs(centres, "alpha", STUDENT)
    environment = wait_for(lambda: (lambda out: out if "JUPYTERHUB_USER=" in out else None)(slurm(
        centres, "alpha", "sacct", "-j", job["job_id"], "--env-vars", "--noheader")), 30,
        "alpha's accounting to store the job's environment (slurmdbd records it after the job starts)")
    script = slurm(centres, "alpha", "sacct", "-j", job["job_id"], "--batch-script", "--noheader")
    assert "JUPYTERHUB_USER=" in environment  # the environment is stored (the attack's premise)
    assert "JUPYTERHUB_API_TOKEN" not in environment and "JPY_API_TOKEN" not in environment, environment
    assert "TOKEN=" not in script and ".fedhub/secrets/" in script
    assert set(waiting.iterdir()) <= before  # this job's file: read and removed by the job
    assert waiting.stat().st_mode & 0o077 == 0
    # the server has its token all the same: it answers through the proxy
    assert api.through_proxy(STUDENT).status_code == 200


def test_a_jobs_secrets_wait_in_a_private_file_that_a_cancel_removes(api, hub, centres):
    """Finding 10: while a server's job waits in the queue its token waits in a file only the
    user can read (0600 in a 0700 folder; another real Unix user cannot open it); stopping the
    server before the job ran removes the file."""
    home = centres.centres["gamma"].home_of(STUDENT)  # gamma's own home, as this machine sees it
    waiting = home / ".fedhub" / "secrets"
    before = set(waiting.iterdir()) if waiting.exists() else set()
    full = blocker(centres, "gamma", 2, 10)
    try:
        assert api.spawn(STUDENT, {"centre": "gamma", "cores": 1, "memory": "512M", "walltime": "00:10:00"}).status_code in (201, 202)
        api.progress(STUDENT, until=lambda e: "Pending" in e.get("message", ""))
        (file,) = set(waiting.iterdir()) - before
        assert file.stat().st_mode & 0o777 == 0o600 and file.stat().st_uid == pwd.getpwnam(STUDENT).pw_uid
        assert "JUPYTERHUB_API_TOKEN=" in file.read_text()
        other = pwd.getpwnam(OTHER)
        peek = subprocess.run(["setpriv", f"--reuid={other.pw_uid}", f"--regid={other.pw_gid}", "--clear-groups",
                               "cat", str(file)], capture_output=True, text=True)
        assert peek.returncode != 0 and "Permission denied" in peek.stderr
        api.stop(STUDENT)
        assert not file.exists()
    finally:
        slurm(centres, "gamma", "scancel", full)
