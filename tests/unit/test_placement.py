"""Placement ranking and centre health, pure, on snapshots (no cluster)."""

from datetime import datetime, timedelta

import pytest

from fedhub.federation import parse_federation
from fedhub.slurm.monitor import CentreSnapshot, next_health
from fedhub.request import parse_user_options
from fedhub.placement import Estimate, decide, fitting_options, rank
from fedhub.slurm.commands import JobInfo
from helpers.federations import GOOD

FED = parse_federation(GOOD)
pytestmark = pytest.mark.usefixtures("unix_users")  # north is a local centre: its logins are real accounts
NOW = datetime(2026, 11, 24, 9, 0, 0)


def est(centre, minutes, rate=1.0, quota=None, partition="p", error=None):
    start = None if minutes is None else NOW + timedelta(minutes=minutes)
    return Estimate(centre=centre, centre_name=centre.title(), partition=partition, login="u", start=start,
                    charge_rate=rate, quota_left=quota, error=error)


def test_soonest_start_wins_then_quota_then_price():
    ranked = rank([est("a", 40), est("b", 0, rate=2.0), est("c", 0, rate=1.0), est("d", 5)], NOW)
    assert [e.centre for e in ranked] == ["c", "b", "d", "a"]
    # equal start: more allocation left beats a lower price
    ranked = rank([est("a", 0, rate=1.0, quota=0.1), est("b", 0, rate=3.0, quota=0.9)], NOW)
    assert [e.centre for e in ranked] == ["b", "a"]
    # no limit at all counts as plenty left
    ranked = rank([est("a", 0, rate=1.0, quota=0.5), est("b", 0, rate=1.0, quota=None)], NOW)
    assert [e.centre for e in ranked] == ["b", "a"]


def test_when_starts_are_close_the_centre_holding_the_users_large_data_wins():
    import dataclasses
    holder = dataclasses.replace(est("a", 0, rate=2.0, quota=0.2), data_bytes=5 << 30)
    ranked = rank([holder, est("b", 0, rate=1.0, quota=0.9)], NOW)
    assert [e.centre for e in ranked] == ["a", "b"]  # 5 GB need not travel: before quota and price
    # a few notebooks are not worth it; and a sooner start still comes first
    few = dataclasses.replace(est("a", 0, rate=2.0), data_bytes=20 << 20)
    assert [e.centre for e in rank([few, est("b", 0)], NOW)] == ["b", "a"]
    assert [e.centre for e in rank([dataclasses.replace(holder, start=NOW + timedelta(minutes=30)),
                                    est("b", 0)], NOW)] == ["b", "a"]


def test_decision_explains_itself():
    d = decide([est("gamma", 0), est("alpha", 40), est("delta", None, error="Requested node configuration is not available")],
               {"beta": "down"}, NOW)
    assert d.chosen.centre == "gamma"
    assert d.summary() == ("Centre gamma chosen (p): starts now. alpha: about 40 min wait. beta: down. "
                           "delta: Requested node configuration is not available.")


def test_one_entry_per_centre_its_best_partition():
    d = decide([est("a", 0, rate=1.0, partition="cpu"), est("a", 0, rate=0.5, partition="debug"), est("b", 3)],
               {}, NOW)
    assert [(e.centre, e.partition) for e in d.ranked] == [("a", "debug"), ("b", "p")]


def test_nothing_fits():
    d = decide([], {"north": "no partition fits this request", "south": "down"}, NOW)
    assert d.chosen is None
    assert d.summary() == "No centre can run this request now. north: no partition fits this request. south: down."


def test_fitting_options_filter_by_limits_account_health_and_quota():
    r = parse_user_options(FED, {"centre": "auto", "cores": 16, "memory": "20G"}, "alice", allow_auto=True)
    options, rejected = fitting_options(FED, r, "alice", {"north": True, "south": True})
    assert [(o.centre.id, o.partition.name, o.login) for o in options] == [("south", "batch", "asmith")]
    assert rejected == {"north": "no partition fits this request"}
    small = parse_user_options(FED, {"centre": "auto", "cores": 2}, "alice", allow_auto=True)
    options, rejected = fitting_options(FED, small, "alice", {"north": False})
    assert rejected == {"north": "down"} and {o.centre.id for o in options} == {"south"}
    options, rejected = fitting_options(FED, small, "alice", {}, quota=lambda user, centre: 0.0 if centre == "south" else 0.5)
    assert rejected == {"south": "allocation used up"} and {o.centre.id for o in options} == {"north"}
    gpu = parse_user_options(FED, {"centre": "auto", "gpus": 2, "gpu_type": "a100"}, "alice", allow_auto=True)
    options, _ = fitting_options(FED, gpu, "alice", {})
    assert [(o.centre.id, o.partition.name) for o in options] == [("north", "gpu")]


def test_one_centres_unexpected_error_never_aborts_placement_at_the_others():
    """Defect B1: an error at one centre (here an operator's quota hook that fails for it) used to
    abort the whole placement; now that centre is rejected with the reason and the others rank."""
    def hook(user, centre):
        if centre == "north":
            raise RuntimeError("accounting database unreachable")
        return 0.5
    small = parse_user_options(FED, {"centre": "auto", "cores": 2}, "alice", allow_auto=True)
    options, rejected = fitting_options(FED, small, "alice", {}, quota=hook)
    assert rejected == {"north": "could not be checked (RuntimeError)"}
    assert {o.centre.id for o in options} == {"south"}


def test_auto_skips_centres_where_the_user_has_no_login():
    small = parse_user_options(FED, {"centre": "auto", "cores": 2}, "zed1", allow_auto=True)
    options, rejected = fitting_options(FED, small, "zed1", {})
    assert rejected == {"north": "no login (there is no such account; ask the centre for one)"}
    assert [(o.centre.id, o.login) for o in options] == [("south", "fh_zed1")]


def test_auto_is_checked_against_the_widest_limits():
    from fedhub.request import OptionError
    with pytest.raises(OptionError, match="outside what any centre where you have a login allows; choose 1-64"):
        parse_user_options(FED, {"centre": "auto", "cores": 65}, "alice", allow_auto=True)
    with pytest.raises(OptionError, match="automatic placement is not enabled"):
        parse_user_options(FED, {"centre": "auto"}, "alice")
    assert parse_user_options(FED, {}, "alice", allow_auto=True).centre == "auto"


def test_health_has_a_grace_before_down_and_recovers_at_once():
    up, since = next_health(None, answered=False, now=100.0, grace=30)
    assert (up, since) == (True, 100.0)
    snap = CentreSnapshot("c", 100.0, answered=False, up=True, down_since=100.0)
    assert next_health(snap, answered=False, now=129.0, grace=30) == (True, 100.0)
    assert next_health(snap, answered=False, now=131.0, grace=30) == (False, 100.0)
    assert next_health(snap, answered=True, now=140.0, grace=30) == (True, None)


def test_only_an_answering_snapshot_can_say_a_job_is_gone():
    running = JobInfo("7", "RUNNING", "", "n1", None)
    answered = CentreSnapshot("c", 1.0, answered=True, up=True, jobs={"7": running}, tracked=frozenset({"7", "8"}))
    assert not answered.job_gone("7") and answered.job_gone("8") and not answered.job_gone("9")
    silent = CentreSnapshot("c", 1.0, answered=False, up=True, tracked=frozenset({"7", "8"}))
    assert not silent.job_gone("8")


def test_auto_skips_centres_where_the_user_has_no_project_to_charge():
    import copy
    doc = copy.deepcopy(GOOD)
    doc["centres"][1]["projects"] = {"claim": "projects"}  # south: projects from the provider; none here
    fed = parse_federation(doc)
    small = parse_user_options(fed, {"centre": "auto", "cores": 2}, "alice", allow_auto=True)
    options, rejected = fitting_options(fed, small, "alice", {})
    assert rejected == {"south": "no project to charge"} and {o.centre.id for o in options} == {"north"}


def test_the_summary_is_in_the_users_language_and_the_operators_log_line_stays_english():
    """Issue 26: a centre's reason is worded when shown (``lazy``), so one decision reads in
    Chinese for the user and in English for the log line the spawner writes."""
    from fedhub.i18n import in_language, use_language

    small = parse_user_options(FED, {"centre": "auto", "cores": 2}, "alice", allow_auto=True)
    _, rejected = fitting_options(FED, small, "alice", {"north": False})
    d = decide([est("south", 40)], rejected, NOW)
    use_language("zh_CN")
    try:
        assert d.summary() == "已选择中心 south（p）：约等待 40 分钟。north：不可用。"
        with in_language("en"):
            assert d.summary() == "Centre south chosen (p): about 40 min wait. north: down."
        assert d.summary().startswith("已选择中心")
    finally:
        use_language("en")
