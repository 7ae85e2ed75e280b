"""User options: the shared validation of the form and the REST API (pure, no cluster)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhub.federation import parse_federation
from fedhub.request import OptionError, parse_user_options
from helpers.federations import GOOD

FED = parse_federation(GOOD)
pytestmark = pytest.mark.usefixtures("unix_users")  # north is a local centre: its logins are real accounts


def test_full_request_is_typed_and_canonical():
    r = parse_user_options(FED, {"centre": "north", "partition": "gpu", "cores": "4", "memory": "32G",
                                 "walltime": "1-00:00:00", "gpus": 2, "gpu_type": "a100"}, "alice")
    assert (r.centre, r.partition, r.login, r.cores, r.memory_mb, r.walltime_s, r.gpu_type, r.gpus) == \
        ("north", "gpu", "alice", 4, 32768, 86400, "a100", 2)
    assert r.to_user_options() == {"centre": "north", "partition": "gpu", "cores": 4, "memory": "32G",
                                   "walltime": "1-00:00:00", "gpus": 2, "gpu_type": "a100"}
    # the canonical form validates to the same request
    assert parse_user_options(FED, r.to_user_options(), "alice") == r


def test_defaults_fill_what_is_missing():
    r = parse_user_options(FED, {"centre": "south"}, "alice")
    assert (r.partition, r.login, r.cores, r.memory_mb, r.walltime_s, r.gpus) == ("batch", "asmith", 1, 1024, 3600, 0)


@pytest.mark.parametrize("options,field,fragment", [
    ({}, "centre", "choose a centre: one of north, south"),
    ({"centre": "east"}, "centre", "unknown centre 'east'; choose one of: north, south"),
    ({"centre": "north", "partition": "gpux"}, "partition", "North has no partition 'gpux'; choose one of: cpu, gpu"),
    ({"centre": "north", "cores": 9}, "cores", "9 is outside what partition 'cpu' at North allows; choose 1-8"),
    ({"centre": "north", "cores": "0"}, "cores", "choose 1-8"),
    ({"centre": "north", "cores": True}, "cores", "whole number"),
    ({"centre": "north", "cores": 2.5}, "cores", "must be a string, got float"),
    ({"centre": "north", "memory": "17G"}, "memory", "17G is more than partition 'cpu' at North allows; ask for at most 16G"),
    ({"centre": "north", "walltime": "09:00:00"}, "walltime", "ask for at most 08:00:00"),
    ({"centre": "north", "gpus": 1}, "gpus", "partition 'cpu' at North has no GPUs"),
    ({"centre": "north", "partition": "gpu", "gpus": 3}, "gpus", "for a100 allows; choose 0-2"),
    ({"centre": "north", "partition": "gpu", "gpus": 1, "gpu_type": "h100"}, "gpu_type", "choose one of: a100, dcu"),
    ({"centre": "north", "image": "evil"}, "image", "unknown option; allowed options are: centre, partition"),
    ({"centre": ["north"]}, "centre", "must be a string, got list"),
])
def test_rejections_name_the_field_and_the_fix(options, field, fragment):
    with pytest.raises(OptionError) as info:
        parse_user_options(FED, options, "alice")
    assert info.value.field == field
    assert fragment in info.value.message


def test_user_without_login_is_told_so():
    doc = {**GOOD, "centres": [dict(GOOD["centres"][0], logins={"template": None, "map": {"carol": "bob"}})]}
    fed = parse_federation(doc)
    with pytest.raises(OptionError, match="you have no usable login at North: the centre maps only listed users"):
        parse_user_options(fed, {"centre": "north"}, "alice")
    assert parse_user_options(fed, {"centre": "north"}, "carol").login == "bob"


@pytest.mark.parametrize("hub_user,looked_for,reason", [
    ("zed1", "zed1", "there is no such account; ask the centre for one"),  # defect B1: was a 500
    ("root", "root", "FedHub never acts as root"),  # defect B2
    ("daemon", "daemon", "that is a system account (uid 1 is outside"),
    ("nobody", "nobody", "that is a system account (uid 65534 is outside"),
    ("fedhub", "fedhub", "that is the hub's own query login there"),
    ("bob", "bob", "that login belongs to another user"),
])
def test_logins_that_must_not_be_used_are_refused_by_name(hub_user, looked_for, reason):
    """Defects B1 and B2: the template never yields a missing account, root, a system account, the
    query user or another user's login; the message names the centre, the login and the reason."""
    doc = {**GOOD, "centres": [dict(GOOD["centres"][0], logins={"template": "{username}", "map": {"carol": "bob"}}),
                               GOOD["centres"][1]]}
    doc["centres"][0]["scheduler"] = dict(doc["centres"][0]["scheduler"])
    fed = parse_federation(doc)
    if hub_user == "fedhub":  # the query user is the ssh centre's
        fed = parse_federation({**doc, "centres": [dict(GOOD["centres"][1], logins={"template": "{username}"})]})
    centre = fed.centres[0]
    with pytest.raises(OptionError) as info:
        parse_user_options(fed, {"centre": centre.id}, hub_user)
    assert info.value.field == "centre"
    assert f"you have no usable login at {centre.name} (looked for login {looked_for!r}): {reason}" in info.value.message


def test_an_explicit_map_may_name_a_system_account_but_never_root():
    fed = parse_federation({**GOOD, "centres": [dict(GOOD["centres"][0], logins={"map": {"svc": "daemon"}})]})
    assert parse_user_options(fed, {"centre": "north"}, "svc").login == "daemon"


def test_options_must_be_an_object():
    with pytest.raises(OptionError, match="must be a JSON object"):
        parse_user_options(FED, ["centre", "north"], "alice")


HOSTILE = st.one_of(
    st.text(alphabet=st.sampled_from(list(";|&$`'\"\\\n\r\t *?<>(){}[]#!~%") + ["a", "1", "G", ":", "-"]), min_size=1, max_size=80),
    st.integers(min_value=-(10**30), max_value=10**30).filter(lambda n: not 0 <= n <= 8),
    st.just("4\nrm -rf /"), st.just("$(reboot)"), st.just("cpu --uid=0"), st.just("1" * 100),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.floats(allow_nan=True), st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(["centre", "partition", "cores", "memory", "walltime", "gpus", "gpu_type"]),
       value=HOSTILE)
def test_hostile_values_are_rejected_or_harmless(field, value):
    """Any value either fails with a message naming its field, or becomes a typed, in-range request."""
    options = {"centre": "north", "partition": "gpu", field: value}
    try:
        r = parse_user_options(FED, options, "alice")
    except OptionError as e:
        assert e.field == field and e.message
        return
    # accepted: everything is from the allow-lists and within limits
    assert r.centre in FED.centre_ids and r.partition in ("cpu", "gpu")
    assert 1 <= r.cores <= 4 and 1 <= r.memory_mb <= 32768 and 60 <= r.walltime_s <= 86400
    assert r.gpu_type in (None, "a100", "dcu") and 0 <= r.gpus <= 4
