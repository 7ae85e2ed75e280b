"""Classes as their teachers and the class service see them: a class's settings, its session,
its roster, and the files in a member's server. Shared by the class and tenant tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

from .testbed import HubAPI


def a_class(name: str, teachers: list[str], students: list[str], **more) -> dict:
    return {"title": f"Class {name}", "teachers": teachers, "students": students,
            "centres": [{"centre": "alpha", "partition": "cpu"}, "gamma"],
            "resources": {"cores": 1, "memory": "512M", "walltime": "00:30:00"}, **more}


def service(hub, token: str, method: str, path: str):
    return requests.request(method, f"{hub.url}/services/fedhub-classes/api/{path}",
                            headers={"Authorization": f"token {token}"}, timeout=60)


def in_session(teacher: HubAPI, name: str, minutes_left: int = 25) -> None:
    now = datetime.now(timezone.utc)
    current = teacher.get(f"/fedhub/classes/{name}").json()
    r = teacher.session.put(teacher.url(f"/fedhub/classes/{name}"), timeout=30, json={
        **current, "sessions": [{"start": (now - timedelta(minutes=5)).isoformat(),
                                 "end": (now + timedelta(minutes=minutes_left)).isoformat()}]})
    assert r.status_code == 200, r.text


def roster_state(hub, token: str, name: str, student: str) -> dict:
    roster = service(hub, token, "GET", f"classes/{name}").json()
    return next(s for s in roster["students"] if s["name"] == student)


def contents(hub, token: str, user: str, path: str, method: str = "GET", body: dict | None = None):
    return requests.request(method, f"{hub.url}/user/{user}/api/contents/{path}", json=body, timeout=30,
                            headers={"Authorization": f"token {token}"})
