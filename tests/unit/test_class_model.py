"""A class's definition, from the class file or the REST API: a good one becomes the model (and
back, unchanged); each mistake names the field and says what is allowed."""

import copy
from datetime import datetime, timedelta, timezone

import pytest

from fedhub.classes.model import ClassError, load_class_file, parse_class
from fedhub.federation import parse_federation
from helpers.federations import GOOD

FEDERATION = parse_federation(GOOD)
CLASS = {
    "name": "hpc-101", "title": "HPC notebooks, first steps", "teachers": ["carol"], "students": ["alice", "bob"],
    "centres": [{"centre": "north", "partition": "cpu", "reservation": {"create": {"cores": 4}}},
                {"centre": "south", "project": "course101", "reservation": "south-course"}],
    "resources": {"cores": 2, "memory": "2G", "walltime": "01:00:00"},
    "sessions": [{"start": "2026-12-02T09:00:00+01:00", "end": "2026-12-02T11:00:00+01:00"}],
}


def test_a_good_class_becomes_the_model_and_round_trips():
    spec = parse_class(CLASS, FEDERATION)
    assert (spec.name, spec.teachers, spec.students) == ("hpc-101", ("carol",), ("alice", "bob"))
    assert (spec.cores, spec.memory_mb, spec.walltime_s) == (2, 2048, 3600)
    assert spec.reservation_at("north") == "fedhub-hpc-101" and spec.reservation_at("south") == "south-course"
    assert spec.centre("south").partition == "batch"  # the centre's first partition
    nine = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    assert spec.session_at(nine) is not None and spec.session_at(nine - timedelta(seconds=1)) is None
    assert spec.next_session(nine - timedelta(hours=1)).start == nine
    assert parse_class(spec.to_json(), FEDERATION) == spec
    assert spec.role_name == "fedhub-teacher-hpc-101"


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(name="HPC 101"), "name: 'HPC 101' is not allowed; use 2-47 lower-case letters"),
    (lambda d: d.update(teachers=[]), "teachers: must be a list of hub user names (at least one)"),
    (lambda d: d.update(students=["alice", "bob; rm"]), "students[1]: 'bob; rm' is not allowed; use a hub user name"),
    (lambda d: d["centres"][0].update(centre="west"), "centres[0].centre: 'west' is not a centre of the federation; "
                                                      "use one of: north, south"),
    (lambda d: d["centres"][0].update(partition="big"), "centres[0].partition: North has no partition 'big'; "
                                                        "use one of: cpu, gpu"),
    (lambda d: d["centres"][1].update(project="x; rm"), "centres[1].project: 'x; rm' is not allowed"),
    (lambda d: d["centres"][0].update(reservation={"create": {"cores": 2, "nodes": 1}}),
     "centres[0].reservation.create: give its size as cores: N or nodes: N"),
    (lambda d: d["resources"].update(cores=9), "resources.cores: 9 is more than partition 'cpu' at North allows (8)"),
    (lambda d: d["resources"].update(memory="lots"), "resources.memory:"),
    (lambda d: d["sessions"][0].update(end="2026-12-02T08:00:00+01:00"),
     "sessions[0].end: must be after the start, and a session lasts at most 24 hours"),
    (lambda d: d["sessions"][0].update(start="at nine"), "sessions[0].start: 'at nine' is not a date and time"),
    (lambda d: d.update(colour="red"), "colour: unknown field; allowed fields are:"),
])
def test_each_mistake_names_the_field(change, message):
    doc = copy.deepcopy(CLASS)
    change(doc)
    with pytest.raises(ClassError) as e:
        parse_class(doc, FEDERATION)
    assert message in str(e.value)


def test_the_class_file_names_the_class_and_refuses_a_second_with_the_same_name(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text("classes:\n  - name: hpc-101\n    teachers: [carol]\n    centres: [north]\n    provider_groups: true\n"
                    "  - name: hpc-101\n    teachers: [dave]\n    centres: [south]\n    students: [erin]\n")
    with pytest.raises(ClassError) as e:
        load_class_file(path, FEDERATION)
    assert str(e.value) == f"{path}: classes[1].name: 'hpc-101' is defined twice; class names are unique"
    path.write_text("classes:\n  - name: hpc-101\n    teachers: [carol]\n    centres: [north]\n    provider_groups: true\n"
                    "    sessions: [{start: 2026-12-02 09:00, end: 2026-12-02 11:00}]\n")
    (spec,) = load_class_file(path, FEDERATION)
    assert spec.students is None and spec.sessions[0].end - spec.sessions[0].start == timedelta(hours=2)


# ---------------------------------------------------------------- a student's "Start for <class>"

from fedhub.classes.spawn import class_request  # noqa: E402
from fedhub.request import OptionError  # noqa: E402

IN_SESSION = datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc)  # the session: 08:00-10:00 UTC


def test_a_class_start_runs_at_the_classs_centres_with_its_settings(unix_users):
    spec = parse_class(CLASS, FEDERATION)
    request = class_request(spec, FEDERATION, "alice", {"class": "hpc-101"}, IN_SESSION)
    assert (request.centre, request.klass, request.cores, request.memory_mb) == ("auto", "hpc-101", 2, 2048)
    assert request.walltime_s == 30 * 60  # the session ends at 10:00: Slurm starts no job outliving its reservation
    assert request.places == (("north", "cpu", None, "fedhub-hpc-101"), ("south", "batch", "course101", "south-course"))
    placed = request.at("south", "batch", "alice")
    assert (placed.project, placed.reservation, placed.places) == ("course101", "south-course", ())
    assert "in reservation south-course, for class hpc-101" in placed.describe()
    assert request.to_user_options() == {"class": "hpc-101", "cores": 2, "memory": "2G", "walltime": "00:30:00"}
    fewer = class_request(spec, FEDERATION, "alice", {"class": "hpc-101", "cores": 1, "memory": "1G"}, IN_SESSION)
    assert (fewer.cores, fewer.memory_mb) == (1, 1024)


@pytest.mark.parametrize("options, now, field, words", [
    ({"class": "hpc-101", "cores": 3}, IN_SESSION, "cores", "3 is more than the class gives; ask for at most 2"),
    ({"class": "hpc-101", "memory": "4G"}, IN_SESSION, "memory", "4G is more than the class gives; ask for at most 2G"),
    ({"class": "hpc-101", "cores": "many"}, IN_SESSION, "cores", "'many' is not a valid cores"),
    ({"class": "hpc-101", "centre": "north"}, IN_SESSION, "centre", "uses the class's settings; leave centre out"),
    ({"class": "hpc-101", "partition": "gpu"}, IN_SESSION, "partition", "leave partition out"),
    ({"class": "hpc-101"}, IN_SESSION + timedelta(hours=1), "class", "is not in session now; it has no session planned"),
    ({"class": "hpc-101"}, IN_SESSION - timedelta(hours=2), "class", "is not in session now; the next starts 2026-12-02"),
])
def test_a_class_start_is_refused_outside_the_classs_settings(unix_users, options, now, field, words):
    with pytest.raises(OptionError) as e:
        class_request(parse_class(CLASS, FEDERATION), FEDERATION, "alice", options, now)
    assert e.value.field == field and words in e.value.message


def test_a_class_says_where_its_students_come_from():
    """Issue 21, finding 2: the provider's groups make students only of a class that says so."""
    bare = {k: v for k, v in CLASS.items() if k != "students"}
    with pytest.raises(ClassError, match=r"students: list the class's students, or set provider_groups: true"):
        parse_class(bare, FEDERATION)
    assert parse_class({**bare, "provider_groups": True}, FEDERATION).provider_groups
    with pytest.raises(ClassError, match=r"provider_groups: a class takes its students from its students list or"):
        parse_class({**CLASS, "provider_groups": True}, FEDERATION)
