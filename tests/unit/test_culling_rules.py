"""Which idle servers are culled, with the federation file's timeouts (a partition's own, else
its centre's), and what culling gives back to the quota panel."""

import copy
from datetime import datetime, timedelta, timezone

import pytest

from fedhub.culling.decide import idle_timeout, should_cull, shortest_timeout
from fedhub.culling.returned import CulledLedger, returned_core_hours
from fedhub.federation import FederationError, parse_federation
from fedhub.quota.accounting import Allocation
from fedhub.quota.ledger import quota_report
from helpers.federations import GOOD


def federation(north_sessions=None, cpu=None):
    doc = copy.deepcopy(GOOD)
    if north_sessions is not None:
        doc["centres"][0]["sessions"] = north_sessions
    if cpu:
        doc["centres"][0]["partitions"][0].update(cpu)
    return parse_federation(doc)


def server(centre="north", partition="cpu"):
    return {"full_name": "alice/", "state": {"version": 3, "centre": centre, "request": {"partition": partition}}}


def test_the_partition_overrides_the_centre_and_none_means_never():
    fed = federation({"idle_timeout": "01:00:00", "kernel_idle_timeout": "00:20:00"},
                     cpu={"idle_timeout": "00:00:30", "kernel_idle_timeout": 0})
    north = fed.centre("north")
    assert north.idle_timeouts("cpu") == (30, 0)
    assert north.idle_timeouts("gpu") == (3600, 1200)
    assert idle_timeout(fed, server()) == 30
    assert should_cull(fed, server(), 30) and not should_cull(fed, server(), 29)
    assert should_cull(fed, server(partition="gpu"), 3600) and not should_cull(fed, server(partition="gpu"), 3000)
    assert not should_cull(fed, server(centre="south"), 10 ** 6)  # south sets none: never culled
    assert not should_cull(fed, {"full_name": "bob/", "state": {}}, 10 ** 6)  # not a FedHub server
    assert shortest_timeout(fed) == 30
    assert shortest_timeout(federation()) == 0  # no timeouts anywhere: no culler at all


@pytest.mark.parametrize("sessions,cpu,expected", [
    ({"idle_timeout": "soon"}, None, "centres[0].sessions.idle_timeout: 'soon' is not a walltime"),
    ({"idle_timeout": "00:00:05"}, None, "centres[0].sessions.idle_timeout: '00:00:05' is too short; give at least 10"),
    (None, {"kernel_idle_timeout": "1:99"}, "centres[0].partitions[0].kernel_idle_timeout: '1:99' is not a walltime"),
    ({"idle_after": "01:00:00"}, None, "centres[0].sessions.idle_after: unknown field; allowed fields are: extend, extend_step, idle_timeout"),
])
def test_a_bad_timeout_is_named_by_its_field(sessions, cpu, expected):
    with pytest.raises(FederationError) as info:
        federation(sessions, cpu)
    assert expected in str(info.value)


def test_culling_gives_back_the_walltime_left_and_the_quota_report_says_so(tmp_path):
    assert returned_core_hours(1800, 4, 0.5) == 1.0
    assert returned_core_hours(-5, 4, 1.0) == 0.0  # past its end: nothing left to give
    ledger = CulledLedger(str(tmp_path))
    now = datetime.now(timezone.utc)
    ledger.add("alice", {"at": (now - timedelta(days=40)).isoformat(), "centre": "north", "core_hours": 7.0})
    ledger.add("alice", {"at": now.isoformat(), "centre": "north", "core_hours": 1.5})
    ledger.add("alice", {"at": now.isoformat(), "centre": "south", "core_hours": 2.0})
    period = now - timedelta(days=30)
    assert ledger.total("alice", "north", period) == (1.5, 1)
    assert ledger.total("bob", "north", period) == (0, 0)
    assert oct((tmp_path / "culled" / f"{'alice'.encode().hex()}.json").stat().st_mode & 0o777) == "0o600"
    fed = federation()
    allocation = Allocation("north", "alice", "proj_alice", period, now, 10.0, 100.0, 0.0, None)
    report = quota_report(fed, "alice", {"north": ([allocation], None)}, ledger)
    assert report["centres"][0]["culling"] == {"core_hours_returned": 1.5, "servers_culled": 1}
