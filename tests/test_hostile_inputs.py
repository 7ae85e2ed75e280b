"""Hostile input (issue 21): generated values for the class API, the provider's login claims and the
paths a student's server reports. Each is refused with a message naming the field, or accepted
as something harmless: nothing is written outside its folder, no login is another person's, no
job or reservation is left behind.

The class API cases go to the real hub (its REST API through the proxy); the claims run the
login rules against real Unix accounts; the paths run the courier's own checks. 420 values in
all (hypothesis, derandomised so a run is repeatable)."""

from __future__ import annotations

import posixpath

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.testbed import TEST_USERS, HubAPI, slurm

HOSTILE_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(list("./\\\0\n\r\t ;|&$`'\"<>*?~%:#") + ["a", "1", "é", "名"]),
            min_size=0, max_size=40),
    st.sampled_from(["..", ".", "../x", "a/../../b", "/etc/passwd", "a\\..\\b", "x\0y", "~root", "a" * 300,
                     "%2e%2e", "con", " ", "\n", "day1/../bob/answer.ipynb", "../../../x"]),
)
HOSTILE_VALUE = st.one_of(HOSTILE_TEXT, st.integers(min_value=-(10**12), max_value=10**12), st.booleans(),
                          st.none(), st.floats(allow_nan=True), st.lists(HOSTILE_TEXT, max_size=3),
                          st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=2))


# ------------------------------------------------------------------ paths a server reports (150)

@settings(max_examples=150, deadline=None, derandomize=True)
@given(parts=st.lists(HOSTILE_TEXT, min_size=1, max_size=20))
def test_a_path_a_server_reports_is_refused_or_stays_inside_its_folder(parts):
    from fedhub.classes.materials import MAX_DEPTH, MaterialsError, safe_name, safe_relative
    path = "/".join(parts)
    base = "collected/day1/alice"
    try:
        relative = safe_relative(path)
    except MaterialsError as e:
        assert str(e)  # says which entry and why
        return
    joined = posixpath.normpath(f"{base}/{relative}")
    assert joined.startswith(base + "/") and ".." not in joined.split("/")
    assert relative.count("/") <= MAX_DEPTH and all(safe_name(p) == p for p in relative.split("/"))


# ------------------------------------------------------------------ the provider's login claims (120)

@pytest.fixture(scope="module")
def template_centre(unix_users, tmp_path_factory):
    from fedhub import claims
    from fedhub.federation import parse_federation
    from helpers.federations import GOOD
    north = dict(GOOD["centres"][0], logins={"template": "{username}", "claim": "centre_logins"})
    claims.configure(tmp_path_factory.mktemp("claims"))
    yield parse_federation({**GOOD, "centres": [north]}).centres[0]
    claims.configure(None)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claimed=st.one_of(HOSTILE_VALUE, st.sampled_from(["root", "bob", "carol", "daemon", "nobody", "slurm",
                                                           "munge", "alice", "zed1", "fedhub"])))
def test_a_hostile_login_claim_is_refused_or_is_the_users_own(template_centre, claimed):
    from fedhub import claims
    from fedhub.logins import NoLogin, login_at
    claims.record("alice", {"centre_logins": {"north": claimed}})
    try:
        login = login_at(template_centre, "alice")
    except NoLogin as e:
        assert str(e).startswith("you have no usable login at North")
        return
    assert login == "alice"  # only her own (the template's) login is ever used


# ------------------------------------------------------------------ the class API (150)

CLASS_FIELDS = ["title", "teachers", "students", "centres", "resources", "sessions", "teachers_open_labs", "limits"]


def good_class() -> dict:
    return {"title": "Hostile", "teachers": [TEST_USERS[2]], "students": [TEST_USERS[0]],
            "centres": [{"centre": "alpha", "partition": "cpu"}],
            "resources": {"cores": 1, "memory": "512M", "walltime": "00:30:00"}}


@pytest.fixture(scope="module")
def class_api(hub):
    admin = HubAPI(hub)
    yield admin
    admin.delete("/fedhub/classes/hpc-hostile")
    admin.delete("/groups/hpc-hostile")


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(CLASS_FIELDS), value=HOSTILE_VALUE,
       nested=st.sampled_from([None, "centres.0.centre", "centres.0.partition", "centres.0.project",
                               "centres.0.reservation", "resources.cores", "resources.memory", "resources.walltime"]))
def test_a_hostile_class_definition_is_refused_naming_the_field(class_api, field, value, nested):
    body = good_class()
    if nested:
        head, *rest = nested.split(".")
        node = body[head]
        for key in rest[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[rest[-1]] = value
        field = head
    else:
        body[field] = value
    r = class_api.session.put(class_api.url("/fedhub/classes/hpc-hostile"), json=body, timeout=30)
    if r.status_code in (200, 201):  # accepted: it must be a valid class, as the hub stores it
        stored = class_api.get("/fedhub/classes/hpc-hostile").json()
        assert stored["name"] == "hpc-hostile" and stored["centres"] and stored["teachers"]
        return
    answer = r.json()
    assert r.status_code == 400, (r.status_code, answer)
    assert answer["field"].startswith(field) and answer["message"].startswith(answer["field"]), answer


def test_after_the_hostile_class_definitions_no_reservation_or_job_is_left(class_api, centres):
    """Runs after the generated cases: nothing of theirs is at the centre."""
    assert "fedhub-hpc-hostile" not in slurm(centres, "alpha", "scontrol", "show", "reservation")
    assert slurm(centres, "alpha", "squeue", "--noheader", "--name=fedhub-hpc-hostile") == ""
    r = requests.get(f"{class_api.hub.url}/hub/api/fedhub/classes/hpc-hostile",
                     headers=dict(class_api.session.headers), timeout=30)
    assert r.status_code in (200, 404)
