"""Classes through the real hub's REST API: an admin creates them; a teacher's token (the class's
role, JupyterHub scopes filtered to the class's group) reaches the class's students and nothing
else. Every escalation path a teacher might try is refused by JupyterHub itself or by FedHub."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path
import time

import pytest
import requests

from helpers.testbed import TEST_USERS, HubAPI, live_jobs, slurm, wait_for
from helpers.classes import a_class, contents, in_session, roster_state, service
from helpers.lab import log_in

STUDENT, OUTSIDER, TEACHER = TEST_USERS


@pytest.fixture(scope="module")
def classes(hub):
    """Class hpc-a (TEACHER teaches STUDENT) and hpc-b (OUTSIDER, taught by nobody here)."""
    admin = HubAPI(hub)
    for name, teachers, students in (("hpc-a", [TEACHER], [STUDENT]), ("hpc-b", ["fhnobody"], [OUTSIDER])):
        r = admin.session.put(admin.url(f"/fedhub/classes/{name}"), json=a_class(name, teachers, students), timeout=30)
        assert r.status_code == 201, r.text
    token = admin.post(f"/users/{TEACHER}/tokens", json={"note": "teacher"}).json()["token"]
    yield admin, HubAPI(hub, token)
    for name in ("hpc-a", "hpc-b"):
        assert admin.delete(f"/fedhub/classes/{name}").status_code == 204
        admin.delete(f"/groups/{name}")
    admin.delete("/users/fhnobody")


def test_an_admin_creates_a_class_and_its_teacher_sees_it(classes):
    admin, teacher = classes
    assert [c["name"] for c in teacher.get("/fedhub/classes").json()["classes"]] == ["hpc-a"]
    assert {c["name"] for c in admin.get("/fedhub/classes").json()["classes"]} >= {"hpc-a", "hpc-b"}
    group = admin.get("/groups/hpc-a").json()
    assert group["users"] == [STUDENT] and group["properties"]["fedhub_class"]["teachers"] == [TEACHER]
    assert "fedhub-teacher-hpc-a" in admin.get(f"/users/{TEACHER}").json()["roles"]
    # the teacher sees the class's users, and only them
    assert [u["name"] for u in teacher.get("/users").json()] == [STUDENT]
    assert teacher.get(f"/users/{STUDENT}").status_code == 200
    assert teacher.get("/groups/hpc-a").json()["users"] == [STUDENT]


def test_a_teacher_changes_only_what_teachers_may(classes):
    admin, teacher = classes
    current = teacher.get("/fedhub/classes/hpc-a").json()
    r = teacher.session.put(teacher.url("/fedhub/classes/hpc-a"), timeout=30, json={
        **current, "sessions": [{"start": "2026-12-02T09:00:00+00:00", "end": "2026-12-02T11:00:00+00:00"}]})
    assert r.status_code == 200 and r.json()["sessions"][0]["end"] == "2026-12-02T11:00:00+00:00", r.text
    for field, value in (("teachers", [TEACHER, OUTSIDER]), ("students", [STUDENT, OUTSIDER]),
                         ("teachers_open_labs", True)):
        r = teacher.session.put(teacher.url("/fedhub/classes/hpc-a"), json={**current, field: value}, timeout=30)
        assert r.status_code == 403 and r.json()["message"].startswith(
            f"{field}: a teacher may change only centres, resources, sessions, title of their class"), r.text
    r = teacher.session.put(teacher.url("/fedhub/classes/hpc-a"), timeout=30,
                            json={**current, "resources": {"cores": 99}})
    assert r.status_code == 400 and r.json()["field"] == "resources.cores", r.text
    assert admin.get("/groups/hpc-a").json()["users"] == [STUDENT]


@pytest.mark.parametrize("method, path, body", [
    # another class's users, their servers and their tokens
    ("GET", f"/users/{OUTSIDER}", None),
    ("POST", f"/users/{OUTSIDER}/server", {}),
    ("DELETE", f"/users/{OUTSIDER}/server", None),
    ("POST", f"/users/{OUTSIDER}/tokens", {}),
    # group membership, in the class and outside it
    ("POST", "/groups/hpc-a/users", {"users": [OUTSIDER]}),
    ("DELETE", "/groups/hpc-a/users", {"users": [STUDENT]}),
    ("POST", "/groups/hpc-b/users", {"users": [TEACHER]}),
    ("PUT", "/groups/hpc-a/properties", {"fedhub_class": {}}),
    ("POST", "/groups/new-class", {}),
    # admin, for the student or themself; the student's account and tokens
    ("PATCH", f"/users/{STUDENT}", {"admin": True}),
    ("PATCH", f"/users/{TEACHER}", {"admin": True}),
    ("PATCH", f"/users/{STUDENT}", {"name": "renamed"}),
    ("POST", f"/users/{STUDENT}/tokens", {}),
    ("DELETE", f"/users/{STUDENT}", None),
    ("POST", "/users/newcomer", {}),
    # the other class, creating or removing classes, sharing the student's server, the proxy, shutting down
    ("GET", "/fedhub/classes/hpc-b", None),
    ("PUT", "/fedhub/classes/hpc-b", a_class("hpc-b", [TEACHER], [OUTSIDER])),
    ("PUT", "/fedhub/classes/hpc-c", a_class("hpc-c", [TEACHER], [OUTSIDER])),
    ("DELETE", "/fedhub/classes/hpc-a", None),
    ("POST", f"/shares/{STUDENT}/", {"user": TEACHER}),
    ("GET", "/proxy", None),
    ("POST", "/shutdown", None),
])
def test_a_teachers_token_is_refused_outside_the_class(classes, method, path, body):
    admin, teacher = classes
    r = teacher.session.request(method, teacher.url(path), json=body, timeout=30)
    assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
    assert admin.get(f"/users/{TEACHER}").json()["admin"] is False
    assert admin.get("/groups/hpc-a").json()["users"] == [STUDENT]
    assert admin.get("/groups/hpc-b").json()["users"] == [OUTSIDER]


def test_a_teacher_opens_a_students_lab_only_where_the_class_allows_it(classes, hub, centres):
    """Without teachers_open_labs the student's server refuses the teacher's token; with it the
    teacher gets in, and the student's server log says who opened it."""
    admin, teacher = classes
    token = teacher.session.headers["Authorization"].split()[1]
    assert admin.spawn(STUDENT, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:10:00"}).status_code in (201, 202)
    current = admin.get("/fedhub/classes/hpc-a").json()
    try:
        admin.wait_ready(STUDENT, 90)
        status = f"{hub.url}/user/{STUDENT}/api/status"
        assert requests.get(status, headers={"Authorization": f"token {token}"}, timeout=30).status_code == 403
        assert f"access:servers!user={STUDENT}" not in set(teacher.get("/user").json()["scopes"])
        r = admin.session.put(admin.url("/fedhub/classes/hpc-a"), json={**current, "teachers_open_labs": True}, timeout=30)
        assert r.status_code == 200, r.text
        assert f"access:servers!user={STUDENT}" in set(teacher.get("/user").json()["scopes"])
        # a token the server has not seen yet (it keeps what the hub said of a token for 5 minutes)
        fresh = admin.post(f"/users/{TEACHER}/tokens", json={"note": "teacher, after"}).json()["token"]
        assert requests.get(status, headers={"Authorization": f"token {fresh}"}, timeout=30).status_code == 200
        (job,) = live_jobs(centres, "alpha", STUDENT)
        server_log = Path(f"/home/{STUDENT}/.fedhub/jobs/fedhub-{job['job_id']}.log")
        wait_for(lambda: f"{STUDENT}'s server opened by {TEACHER} (GET /user/{STUDENT}/api/status)"
                 in server_log.read_text(errors="replace"), 10, "the student's server log to name the teacher")
    finally:
        admin.session.put(admin.url("/fedhub/classes/hpc-a"), json=current, timeout=30)
        admin.stop(STUDENT)
    assert f"access:servers!user={STUDENT}" not in set(teacher.get("/user").json()["scopes"])


def test_bad_class_definitions_name_the_field(classes):
    admin, _ = classes
    for body, field, words in (
        (a_class("hpc-x", [TEACHER], [STUDENT], centres=["delta"]), "centres[0].centre", "'delta' is not a centre"),
        (a_class("hpc-x", [], [STUDENT]), "teachers", "at least one"),
        (a_class("hpc-x", [TEACHER], ["../etc"]), "students[0]", "is not allowed"),
        ({**a_class("hpc-x", [TEACHER], [STUDENT]), "name": "other"}, "name", "the body names 'other'"),
    ):
        r = admin.session.put(admin.url("/fedhub/classes/hpc-x"), json=body, timeout=30)
        assert r.status_code == 400 and r.json()["field"] == field and words in r.json()["message"], r.text
    assert admin.get("/groups/hpc-x").status_code == 404


# ---------------------------------------------------------------- the class service: a session, start all, stop all

def test_a_teacher_starts_and_stops_the_class_from_the_class_service(classes, hub, centres):
    admin, teacher = classes
    token = teacher.session.headers["Authorization"].split()[1]
    assert [c["name"] for c in service(hub, token, "GET", "classes").json()["classes"]] == ["hpc-a"]
    assert service(hub, token, "GET", "classes/hpc-b").status_code == 404  # not their class
    assert service(hub, token, "POST", "classes/hpc-b/start").status_code == 404

    # outside a session the student's one click is refused, naming the class
    student = HubAPI(hub, admin.post(f"/users/{STUDENT}/tokens", json={"note": "student"}).json()["token"])
    r = student.spawn(STUDENT, {"class": "hpc-a"})
    message = r.json()["message"] if r.status_code == 400 else student.progress(STUDENT)[-1]
    assert "Class hpc-a is not in session now" in message, message
    wait_for(lambda: admin.server(STUDENT) is None, 20, "the refused start to leave no record")
    r = student.spawn(STUDENT, {"class": "hpc-b"})
    message = r.json()["message"] if r.status_code == 400 else student.progress(STUDENT)[-1]
    assert "'hpc-b' is not a class you are a student of" in message, message
    wait_for(lambda: admin.server(STUDENT) is None, 20, "the refused start to leave no record")

    in_session(teacher, "hpc-a")
    r = service(hub, token, "POST", "classes/hpc-a/start")
    assert r.status_code == 202 and r.json()["students"] == [STUDENT], r.text
    running = wait_for(lambda: (s := roster_state(hub, token, "hpc-a", STUDENT))["state"] == "running" and s,
                       90, "the student's server to run")
    assert running["centre"] in ("alpha", "gamma") and running["since"], running
    (job,) = live_jobs(centres, running["centre"], STUDENT)
    assert job["cpus"] == "1" and job["memory"] == "512M", job
    minutes = int(job["time_limit"].split(":")[0])
    assert minutes <= 25, job  # the session ends in 25 minutes: so does the server
    assert admin.server(STUDENT)["user_options"]["class"] == "hpc-a"

    r = service(hub, token, "POST", "classes/hpc-a/stop")
    assert r.status_code == 202, r.text
    wait_for(lambda: roster_state(hub, token, "hpc-a", STUDENT)["state"] == "stopped", 60, "the server to stop")
    wait_for(lambda: live_jobs(centres, running["centre"], STUDENT) == [], 30, "the job to end")
    action = service(hub, token, "GET", "classes/hpc-a").json()["action"]
    assert action["action"] == "stop" and action["done"] and action["counts"] == {"stopped": 1}, action


def test_in_chromium_a_chinese_browser_gets_the_spawn_form_in_chinese_until_the_user_chooses(classes, hub, browser):
    """Issue 26: Accept-Language zh-CN (the browser's locale) gives the form and its class button
    in Chinese; the language menu's choice then wins over the browser, on every page."""
    admin, teacher = classes
    in_session(teacher, "hpc-a")
    context = browser.new_context(locale="zh-CN")
    try:
        page = log_in(context, hub, STUDENT, "/hub/spawn")
        page.get_by_role("button", name="为 Class hpc-a 启动").wait_for()
        assert page.locator("label[for=fedhub-centre]").inner_text() == "中心"
        assert page.locator("label[for=fedhub-cores]").inner_text() == "核数"
        assert "限制：最多" in page.locator("#fedhub-limits").inner_text()
        page.select_option("#fedhub-language", "en")
        page.get_by_role("button", name="Start for Class hpc-a").wait_for()
        page.goto(f"{hub.url}/hub/home")
        assert page.locator("html").get_attribute("lang") == "en"
    finally:
        context.close()


def test_in_chromium_a_student_starts_with_one_click_and_the_teacher_watches_and_stops(classes, hub, centres, browser):
    """The student's spawn page offers "Start for Class hpc-a" during the session; the teacher's
    dashboard (through the hub's OAuth, with the teacher's own scopes) shows the server running,
    where, and stops it."""
    admin, teacher = classes
    in_session(teacher, "hpc-a")
    student = log_in(browser, hub, STUDENT, "/hub/spawn")
    teacher_page = log_in(browser, hub, TEACHER, "/services/fedhub-classes/")
    try:
        button = student.get_by_role("button", name="Start for Class hpc-a")
        button.wait_for()
        assert "is in session until" in student.locator("#fedhub-class-hpc-a").inner_text()
        button.click()
        student.wait_for_url(f"{hub.url}/user/{STUDENT}/**", timeout=90_000)
        assert admin.server(STUDENT)["user_options"]["class"] == "hpc-a"

        teacher_page.wait_for_url(f"{hub.url}/services/fedhub-classes/**")
        # the hub's own page around the roster: its header and logo, its user menu, its styles
        # and its dark mode (issue 26: the dashboard was a bare page)
        assert teacher_page.locator("#jupyterhub-logo img").evaluate("img => img.naturalWidth") > 0
        assert TEACHER in teacher_page.locator("nav .navbar-nav").last.inner_text()
        assert teacher_page.locator("a[href='/hub/logout'], #logout").count() >= 1
        assert teacher_page.evaluate("() => getComputedStyle(document.querySelector('#fh-start-all')).borderRadius") \
            not in ("", "0px")  # Bootstrap's button, from the hub's style.min.css
        assert teacher_page.locator("html").get_attribute("data-bs-theme") in ("light", "dark")
        row = teacher_page.locator(f"#fh-roster tr[data-student={STUDENT}]")
        row.locator(".fh-state", has_text="running").wait_for(timeout=30_000)
        teacher_page.locator("#fh-session", has_text="In session until").wait_for()
        assert "(now)" in teacher_page.locator("#fh-session").inner_text()  # the session's timeline
        centre = admin.server(STUDENT)  # where placement put it, as the dashboard names it
        assert row.locator("td").nth(2).inner_text() in ("Alpha", "Gamma")
        teacher_page.locator("#fh-stop-all").click()
        row.locator(".fh-state", has_text="stopped").wait_for(timeout=60_000)
        teacher_page.locator("#fh-message", has_text="Stop all finished: 1 stopped").wait_for()
        assert centre is not None and admin.server(STUDENT) is None
        wait_for(lambda: live_jobs(centres, "alpha", STUDENT) + live_jobs(centres, "gamma", STUDENT) == [], 30,
                 "the student's job to end")
        # issue 26: the language menu in the hub's header; the choice is remembered across the site
        teacher_page.select_option("#fedhub-language", "zh_CN")
        teacher_page.locator("#fh-stop-all", has_text="全部停止").wait_for()
        row.locator(".fh-state", has_text="已停止").wait_for()
        assert teacher_page.locator("html").get_attribute("lang") == "zh-CN"
        assert "正在上课，直到" in teacher_page.locator("#fh-session").inner_text()
        teacher_page.goto(f"{hub.url}/hub/home")
        assert teacher_page.locator("#fedhub-language").input_value() == "zh_CN"
    except Exception:
        teacher_page.screenshot(path="/tmp/fedhub-classes-teacher-failure.png")
        student.screenshot(path="/tmp/fedhub-classes-student-failure.png")
        raise
    finally:
        student.close()
        teacher_page.close()


def test_a_class_runs_in_its_reservations_made_by_the_hub_or_by_the_centre(classes, hub, centres):
    """At alpha (local) the hub makes fedhub-hpc-a for the session, for the class's logins; at gamma
    the class names a reservation the centre's operators made. The dashboard and the student's form
    say both are active; the job runs inside; without a session the hub's reservation is removed."""
    admin, teacher = classes
    token = teacher.session.headers["Authorization"].split()[1]
    now = datetime.now()
    slurm(centres, "gamma", "scontrol", "create", "reservation", "ReservationName=gamma-course",
          f"StartTime={now:%Y-%m-%dT%H:%M:%S}", "Duration=60", "Users=fhtest1", "CoreCnt=1",
          "PartitionName=small", "Flags=IGNORE_JOBS")
    current = admin.get("/fedhub/classes/hpc-a").json()
    reserved = {**current, "centres": [{"centre": "alpha", "partition": "cpu", "reservation": {"create": {"cores": 2}}},
                                       {"centre": "gamma", "reservation": "gamma-course"}]}
    try:
        r = admin.session.put(admin.url("/fedhub/classes/hpc-a"), json=reserved, timeout=30)
        assert r.status_code == 200, r.text
        in_session(teacher, "hpc-a")

        def states():
            views = service(hub, token, "GET", "classes/hpc-a").json()["reservations"]
            return {v["name"]: v["state"] for v in views}
        assert wait_for(lambda: states() == {"fedhub-hpc-a": "active", "gamma-course": "active"} and states(), 30,
                        "both reservations to be active")
        made = slurm(centres, "alpha", "scontrol", "show", "reservation", "fedhub-hpc-a", "--oneliner")
        assert "CoreCnt=2" in made and f"Users={STUDENT},{TEACHER}" in made and "PartitionName=cpu" in made, made
        # the student's form says so, beside the one click
        student = requests.Session()
        student.get(f"{hub.url}/hub/login", timeout=30)
        student.post(f"{hub.url}/hub/login", timeout=30, data={"username": STUDENT, "password": "fedhub-test",
                                                               "_xsrf": student.cookies.get("_xsrf", "")})
        offer = unescape(student.get(f"{hub.url}/hub/spawn", timeout=30).text)
        assert "reservation fedhub-hpc-a at Alpha: active" in offer and "reservation gamma-course at Gamma: active" in offer

        assert service(hub, token, "POST", "classes/hpc-a/start").status_code == 202
        running = wait_for(lambda: (s := roster_state(hub, token, "hpc-a", STUDENT))["state"] == "running" and s,
                           90, "the student's server to run")
        reservation = slurm(centres, running["centre"], "squeue", "--noheader", "--format=%v", f"--user={STUDENT}")
        assert reservation.split() == [{"alpha": "fedhub-hpc-a", "gamma": "gamma-course"}[running["centre"]]]
        assert service(hub, token, "POST", "classes/hpc-a/stop").status_code == 202
        wait_for(lambda: roster_state(hub, token, "hpc-a", STUDENT)["state"] == "stopped", 60, "the server to stop")

        # no session any more: the hub removes its reservation, and leaves the centre's alone
        r = teacher.session.put(teacher.url("/fedhub/classes/hpc-a"), timeout=30,
                                json={**teacher.get("/fedhub/classes/hpc-a").json(), "sessions": []})
        assert r.status_code == 200, r.text
        wait_for(lambda: "fedhub-hpc-a" not in slurm(centres, "alpha", "scontrol", "show", "reservation"), 30,
                 "the hub's reservation to be removed")
        assert "gamma-course" in slurm(centres, "gamma", "scontrol", "show", "reservation")
    finally:
        admin.session.put(admin.url("/fedhub/classes/hpc-a"), json=current, timeout=30)
        slurm(centres, "gamma", "scontrol", "delete", "ReservationName=gamma-course")


def test_a_reservation_held_across_its_start_and_changed_while_active_never_shows_the_teacher_an_error(
        classes, hub, centres):
    """The hub's reservation at alpha for a session that starts a few seconds from now: the
    dashboard says "inactive", then "active until HH:MM", and never an error, while the service
    checks it every 2 s across its start (it used to ask Slurm to move the start of a reservation
    that had begun, which Slurm refuses). A later end reaches Slurm while it is active; a
    session that began before the reservation was made leaves it alone (the demo's case)."""
    admin, teacher = classes
    token = teacher.session.headers["Authorization"].split()[1]
    current = admin.get("/fedhub/classes/hpc-a").json()
    reserved = {**current, "centres": [{"centre": "alpha", "partition": "cpu", "reservation": {"create": {"cores": 1}}}]}

    def sessions(start: datetime, end: datetime) -> None:
        r = teacher.session.put(teacher.url("/fedhub/classes/hpc-a"), timeout=30, json={
            **teacher.get("/fedhub/classes/hpc-a").json(), "sessions": [{"start": start.isoformat(), "end": end.isoformat()}]})
        assert r.status_code == 200, r.text

    def view() -> dict:
        views = service(hub, token, "GET", "classes/hpc-a").json()["reservations"]
        return next((v for v in views if v["name"] == "fedhub-hpc-a"), {"state": "none yet", "until": "", "note": ""})

    def watch(seconds: float, seen: list) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            seen.append(view())
            time.sleep(0.5)

    try:
        assert admin.session.put(admin.url("/fedhub/classes/hpc-a"), json=reserved, timeout=30).status_code == 200
        now = datetime.now(timezone.utc)
        start, end = now + timedelta(seconds=8), now + timedelta(minutes=20)
        sessions(start, end)
        seen: list[dict] = []
        wait_for(lambda: view()["state"] == "inactive", 20, "the reservation to be made, not yet begun")
        watch((start - datetime.now(timezone.utc)).total_seconds() + 8, seen)
        assert [v for v in seen if v["state"] not in ("inactive", "active") or v["note"]] == []
        assert seen[0]["state"] == "inactive" and seen[-1]["state"] == "active", seen
        local_end = end.astimezone().strftime("%Y-%m-%dT%H:%M")
        assert seen[-1]["until"].startswith(local_end), seen[-1]

        # while it is active: a later end is sent to Slurm (and only that), the start stays
        later = end + timedelta(minutes=10)
        sessions(start, later)
        wait_for(lambda: view()["until"].startswith(later.astimezone().strftime("%Y-%m-%dT%H:%M")), 20,
                 "the reservation's new end")
        shown = slurm(centres, "alpha", "scontrol", "show", "reservation", "fedhub-hpc-a", "--oneliner")
        assert f"StartTime={start.astimezone():%Y-%m-%dT%H:%M:%S}" in shown, shown

        # the demo's case: a session that began 5 minutes before its reservation was made
        slurm(centres, "alpha", "scontrol", "delete", "ReservationName=fedhub-hpc-a")
        in_session(teacher, "hpc-a")
        seen = []
        wait_for(lambda: view()["state"] == "active", 20, "the reservation to be made again")
        watch(8, seen)
        assert all(v["state"] == "active" and not v["note"] for v in seen), seen
    finally:  # no session: the hub removes its reservation; then the class as it was
        admin.session.put(admin.url("/fedhub/classes/hpc-a"), json={**reserved, "sessions": []}, timeout=30)
        wait_for(lambda: "fedhub-hpc-a" not in slurm(centres, "alpha", "scontrol", "show", "reservation"), 30,
                 "the hub's reservation to be removed")
        admin.session.put(admin.url("/fedhub/classes/hpc-a"), json=current, timeout=30)


def test_materials_are_handed_out_and_collected_without_a_shared_filesystem(classes, hub, centres):
    """The teacher's folder day1 reaches a student at gamma at once and a student who starts later
    at alpha; the collection gathers each copy into the teacher's collected/day1/<student>/, the
    stopped student's once their server runs again."""
    admin, teacher = classes
    token = teacher.session.headers["Authorization"].split()[1]
    now = datetime.now(timezone.utc)
    r = admin.session.put(admin.url("/fedhub/classes/hpc-m"), timeout=30, json=a_class(
        "hpc-m", [TEACHER], [STUDENT, OUTSIDER], sessions=[{"start": (now - timedelta(minutes=5)).isoformat(),
                                                          "end": (now + timedelta(minutes=25)).isoformat()}]))
    assert r.status_code == 201, r.text
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Day 1"}], "metadata": {},
                "nbformat": 4, "nbformat_minor": 5}
    try:
        # the teacher's server holds day1; the student runs at gamma; OUTSIDER has not started yet
        for user, centre in ((TEACHER, "alpha"), (STUDENT, "gamma")):
            assert admin.spawn(user, {"centre": centre, "cores": 1, "memory": "512M", "walltime": "00:20:00"}).status_code in (201, 202)
            admin.wait_ready(user, 90)
        key = admin.session.headers["Authorization"].split()[1]
        assert contents(hub, key, TEACHER, "day1", "PUT", {"type": "directory"}).status_code in (200, 201)
        assert contents(hub, key, TEACHER, "day1/data", "PUT", {"type": "directory"}).status_code in (200, 201)
        assert contents(hub, key, TEACHER, "day1/intro.ipynb", "PUT",
                        {"type": "notebook", "format": "json", "content": notebook}).status_code in (200, 201)
        assert contents(hub, key, TEACHER, "day1/data/values.txt", "PUT",
                        {"type": "file", "format": "text", "content": "1 2 3\n"}).status_code in (200, 201)

        r = requests.post(
            f"{hub.url}/services/fedhub-classes/api/classes/hpc-m/handout", json={"folder": "day1"}, timeout=60,
            headers={"Authorization": f"token {token}"})
        assert r.status_code == 202 and r.json() == {"folder": "day1", "files": 2}, r.text
        wait_for(lambda: contents(hub, key, STUDENT, "day1/data/values.txt").status_code == 200, 30,
                 "the hand-out at the student's server at gamma")
        assert contents(hub, key, STUDENT, "day1/intro.ipynb").json()["content"]["cells"][0]["source"] == "# Day 1"
        assert roster_state(hub, token, "hpc-m", OUTSIDER)["materials"] == "waiting: handout day1"
        # the student works on their copy
        work = {**notebook, "cells": notebook["cells"] + [{"cell_type": "markdown", "metadata": {}, "source": "mine"}]}
        assert contents(hub, key, STUDENT, "day1/intro.ipynb", "PUT",
                        {"type": "notebook", "format": "json", "content": work}).status_code == 200

        # OUTSIDER starts late, at alpha: the hand-out follows
        assert admin.spawn(OUTSIDER, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:20:00"}).status_code in (201, 202)
        admin.wait_ready(OUTSIDER, 90)
        wait_for(lambda: contents(hub, key, OUTSIDER, "day1/intro.ipynb").status_code == 200, 30,
                 "the hand-out at the late student's server")
        wait_for(lambda: roster_state(hub, token, "hpc-m", OUTSIDER)["materials"] == "has day1", 10,
                 "the dashboard to say the late student has day1")
        admin.stop(OUTSIDER)

        # the collection: the running student's copy now, the stopped one's when it runs again
        r = requests.post(f"{hub.url}/services/fedhub-classes/api/classes/hpc-m/collect", json={"folder": "day1"},
                          headers={"Authorization": f"token {token}"}, timeout=60)
        assert r.status_code == 202, r.text
        # the dashboard says when the whole copy has landed; the files are read after that
        wait_for(lambda: "collected day1" in roster_state(hub, token, "hpc-m", STUDENT)["materials"], 30,
                 "the dashboard to say the student's day1 was collected")
        collected = contents(hub, key, TEACHER, f"collected/day1/{STUDENT}/intro.ipynb")
        assert collected.status_code == 200, collected.text
        assert [c["source"] for c in collected.json()["content"]["cells"]] == ["# Day 1", "mine"]
        assert contents(hub, key, TEACHER, f"collected/day1/{STUDENT}/data/values.txt").json()["content"] == "1 2 3\n"
        assert roster_state(hub, token, "hpc-m", OUTSIDER)["materials"] == "has day1; waiting: collection day1"
        assert admin.spawn(OUTSIDER, {"centre": "alpha", "cores": 1, "memory": "512M", "walltime": "00:20:00"}).status_code in (201, 202)
        admin.wait_ready(OUTSIDER, 90)
        wait_for(lambda: contents(hub, key, TEACHER, f"collected/day1/{OUTSIDER}/intro.ipynb").status_code == 200, 30,
                 "the late collection")
        # a folder that is not the teacher's, or not a folder name, is refused naming the field
        r = requests.post(f"{hub.url}/services/fedhub-classes/api/classes/hpc-m/handout", json={"folder": "../etc"},
                          headers={"Authorization": f"token {token}"}, timeout=60)
        assert r.status_code == 400 and r.json()["message"].startswith("folder:"), r.text
        r = requests.post(f"{hub.url}/services/fedhub-classes/api/classes/hpc-m/handout", json={"folder": "day9"},
                          headers={"Authorization": f"token {token}"}, timeout=60)
        assert r.status_code == 400 and "there is no folder 'day9'" in r.json()["message"], r.text
    finally:
        for user in (TEACHER, STUDENT, OUTSIDER):
            admin.stop(user)
        admin.delete("/fedhub/classes/hpc-m")
        admin.delete("/groups/hpc-m")


def test_fedhubs_api_routes_refuse_a_bad_token_as_jupyterhubs_api_does(classes, hub):
    """403 with a JSON message, not a redirect to the login page a script would follow to a 200."""
    for path in ("/fedhub/classes", "/fedhub/classes/hpc-a", "/fedhub/classes/hpc-a/roster",
                 f"/fedhub/users/{STUDENT}/kernel-centres", f"/fedhub/users/{STUDENT}/start-estimate?centre=alpha"):
        r = requests.get(f"{hub.url}/hub/api{path}", headers={"Authorization": "token not-a-token"}, timeout=30,
                         allow_redirects=False)
        assert r.status_code == 403 and r.json()["message"].startswith("Missing or invalid credentials"), (path, r.text)
