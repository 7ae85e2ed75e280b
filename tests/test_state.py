"""Spawner state: the current envelope round-trips, old shapes still load."""

import pytest

from spawners.state import STATE_VERSION, StateError, make_state, upgrade_state


def test_current_state_round_trips():
    s = make_state("beta", {"centre": "beta", "cores": 2}, {"req_partition": "batch"}, {"job_id": "200001"})
    assert s["version"] == STATE_VERSION
    assert upgrade_state(s) == s


def test_empty_state_is_nothing_to_restore():
    assert upgrade_state({}) == {} and upgrade_state(None) == {}


def test_wrapspawner_envelope_v1_loads():
    old = {"child_conf": {"centre_id": "alpha", "req_partition": "cpu"}, "child_state": {"job_id": "100007"}}
    new = upgrade_state(old)
    assert new == {"version": 2, "centre": "alpha", "request": None,
                   "child_conf": {"req_partition": "cpu"}, "child_state": {"job_id": "100007"}}


def test_plain_batchspawner_state_v0_needs_the_legacy_centre():
    old = {"job_id": "4242", "job_status": "RUNNING node1"}
    with pytest.raises(StateError, match="legacy_centre"):
        upgrade_state(old)
    new = upgrade_state(old, legacy_centre="alpha")
    assert new["centre"] == "alpha" and new["child_state"] == {"job_id": "4242", "job_status": "RUNNING node1"}


def test_future_version_is_refused():
    with pytest.raises(StateError, match="newer"):
        upgrade_state({"version": 99})
