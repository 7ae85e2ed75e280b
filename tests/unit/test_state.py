"""Stored state: every shape ever written loads into the current one (pure)."""

import pytest

from fedhub.spawning.state import STATE_VERSION, StateError, make_state, upgrade_state


def test_current_state_round_trips():
    state = make_state("alpha", {"centre": "alpha", "partition": "cpu"},
                       {"centre": "alpha", "job_id": "100007", "login": "alice", "submission": "ab12"})
    assert state == {"version": STATE_VERSION, "centre": "alpha", "request": {"centre": "alpha", "partition": "cpu"},
                     "job": {"job_id": "100007", "login": "alice", "submission": "ab12"}}
    assert upgrade_state(state) == state


def test_fedhub_child_spawner_state_v2_loads_with_its_login():
    old = {"version": 2, "centre": "beta", "request": None, "child_conf": {"req_username": "asmith"},
           "child_state": {"job_id": "200003", "job_status": "RUNNING beta-n1"}}
    assert upgrade_state(old) == {"version": STATE_VERSION, "centre": "beta", "request": None,
                                  "job": {"job_id": "200003", "login": "asmith", "submission": ""}}


def test_wrapspawner_envelope_v1_loads():
    old = {"child_conf": {"centre_id": "alpha", "req_partition": "cpu"}, "child_state": {"job_id": "100007"}}
    assert upgrade_state(old) == {"version": STATE_VERSION, "centre": "alpha", "request": None,
                                  "job": {"job_id": "100007", "login": None, "submission": ""}}


def test_plain_batchspawner_state_v0_needs_the_legacy_centre():
    old = {"job_id": "4242", "job_status": "RUNNING node1"}
    with pytest.raises(StateError, match="legacy_centre"):
        upgrade_state(old)
    new = upgrade_state(old, legacy_centre="alpha")
    assert new["centre"] == "alpha" and new["job"]["job_id"] == "4242"


def test_empty_and_unknown_states():
    assert upgrade_state(None) == {} and upgrade_state({}) == {}
    assert upgrade_state({"child_conf": {}, "child_state": {}}) == {}
    with pytest.raises(StateError, match="newer than this FedHub"):
        upgrade_state({"version": 99})
