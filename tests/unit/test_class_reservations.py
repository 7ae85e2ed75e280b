"""What the class service asks Slurm to change in a reservation it made (issue 26): only what
differs, and never the start of a reservation that has begun, which Slurm refuses ("Reservation
already started"); the demo's class, in session since before its reservation was made, showed
that refusal to its teacher every two seconds."""

from __future__ import annotations

from datetime import datetime, timedelta

from fedhub.classes.model import ClassCentre, Session
from fedhub.classes.reservations import _local, changes_to

NOW = datetime(2026, 12, 5, 9, 0).astimezone()
ALPHA = ClassCentre("alpha", "cpu", reserve_cores=2)
LOGINS = ["alice", "bob"]


def shown(state: str, start: datetime, end: datetime, users: str = "alice,bob") -> dict:
    """A reservation as ``scontrol show reservation --oneliner`` gives its fields."""
    return {"State": state, "StartTime": _local(start), "EndTime": _local(end), "Users": users}


def test_a_begun_reservation_is_left_alone_when_only_its_start_differs_from_the_session():
    # the session began 5 minutes before the reservation was made, which Slurm then started at once
    session = Session(NOW - timedelta(minutes=5), NOW + timedelta(hours=8))
    made = shown("ACTIVE", NOW, session.end)
    assert changes_to(made, session, ALPHA, LOGINS, NOW) == []


def test_a_begun_reservation_gets_a_new_end_and_new_users_but_never_a_new_start():
    session = Session(NOW - timedelta(minutes=5), NOW + timedelta(hours=9))
    made = shown("ACTIVE", NOW, NOW + timedelta(hours=8), users="alice")
    assert changes_to(made, session, ALPHA, LOGINS, NOW) == [f"EndTime={_local(session.end)}", "Users=alice,bob"]


def test_a_reservation_not_yet_begun_follows_its_session_start():
    later = Session(NOW + timedelta(hours=1), NOW + timedelta(hours=3))
    made = shown("INACTIVE", NOW + timedelta(hours=2), later.end)
    assert changes_to(made, later, ALPHA, LOGINS, NOW) == [f"StartTime={_local(later.start)}"]
    assert changes_to(shown("INACTIVE", later.start, later.end), later, ALPHA, LOGINS, NOW) == []
    # a session moved to a start that has come: the reservation begins now
    begun = Session(NOW - timedelta(minutes=1), later.end)
    assert changes_to(made, begun, ALPHA, LOGINS, NOW) == ["StartTime=now"]


def test_a_class_charged_to_a_project_compares_the_account_not_the_users():
    place = ClassCentre("alpha", "cpu", project="proj_course", reserve_cores=2)
    session = Session(NOW - timedelta(minutes=5), NOW + timedelta(hours=8))
    made = {**shown("ACTIVE", NOW, session.end, users=""), "Accounts": "proj_course"}
    assert changes_to(made, session, place, LOGINS, NOW) == []
    assert changes_to({**made, "Accounts": "other"}, session, place, LOGINS, NOW) == ["Accounts=proj_course"]
