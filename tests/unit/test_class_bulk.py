"""A class's "start all" against a hub at its concurrent spawn limit: every student is started,
never more at once than the hub accepts, and after a 429 the next try comes after a short pause
that doubles (up to 5 s) while the hub keeps refusing, not after the 30-60 s JupyterHub's Retry-After asks
of people in browsers. The hub here is a stand-in for its spawn API's admission rule (a count of
pending spawns); tests/test_class_burst.py runs the same against a real JupyterHub."""

from __future__ import annotations

import asyncio

import pytest

from fedhub.classes import bulk


def test_the_pause_doubles_from_one_second_to_five_and_never_exceeds_the_hubs_retry_after():
    assert [bulk.pause_after_429(n, "40") for n in range(1, 7)] == [1, 2, 4, 5, 5, 5]
    assert bulk.pause_after_429(3, "2") == 2  # a hub asking for less is obeyed
    assert bulk.pause_after_429(1, "0") == 0.5
    assert bulk.pause_after_429(2, None) == 2 and bulk.pause_after_429(2, "soon") == 2


class HubAtItsLimit:
    """Accepts a spawn while fewer than ``limit`` are pending; each stays pending ``spawn_s``."""

    def __init__(self, limit: int, spawn_s: float, retry_after: str = "40"):
        self.limit, self.spawn_s, self.retry_after = limit, spawn_s, retry_after
        self.pending, self.most_pending = 0, 0
        self.events: list[tuple[float, str, int]] = []  # (time, student, status)

    async def call(self, method, path, body):
        student = path.split("/")[2]
        now = asyncio.get_running_loop().time()
        if self.pending >= self.limit:
            self.events.append((now, student, 429))
            return 429, {"message": "Too many users trying to log in right now."}, {"Retry-After": self.retry_after}
        self.pending += 1
        self.most_pending = max(self.most_pending, self.pending)
        asyncio.get_running_loop().call_later(self.spawn_s, self._ready)
        self.events.append((now, student, 202))
        return 202, {}, {}

    def _ready(self):
        self.pending -= 1


async def test_thirty_students_start_through_a_limit_of_five_without_waiting_out_retry_after(monkeypatch):
    monkeypatch.setattr(bulk, "FIRST_PAUSE", 0.01)  # the same doubling, in hundredths of a second
    hub = HubAtItsLimit(limit=5, spawn_s=0.05)
    students = [f"s{i:02d}" for i in range(30)]
    result = await bulk.start_all(hub, "burst", students)
    assert result.counts() == {"started": 30}
    assert hub.most_pending == 5 and result.retries_429 > 0
    # each refused student was asked again well before the hub's Retry-After (40 s) had passed
    refused = {s: t for t, s, status in hub.events if status == 429}
    retried = {s: t for t, s, status in hub.events if status == 202 and s in refused}
    assert set(retried) == set(refused)
    assert max(retried[s] - refused[s] for s in refused) < 2


async def test_a_burst_of_refusals_sent_together_counts_as_one():
    """Eight requests in flight all refused at once: one pause of a second, not 2**7 seconds."""
    hub = HubAtItsLimit(limit=0, spawn_s=0)
    task = asyncio.ensure_future(bulk.start_all(hub, "burst", [f"s{i}" for i in range(8)]))
    await asyncio.sleep(0.2)
    hub.limit = 8
    result = await asyncio.wait_for(task, 5)
    assert result.counts() == {"started": 8}
    first_retry = min(t for t, _, status in hub.events if status == 202)
    first_refusal = min(t for t, _, status in hub.events if status == 429)
    assert 0.9 < first_retry - first_refusal < 1.5


@pytest.mark.parametrize("retry_after", ["1", "0.5"])
async def test_a_hub_that_asks_for_less_than_the_pause_is_asked_again_sooner(retry_after):
    hub = HubAtItsLimit(limit=0, spawn_s=0, retry_after=retry_after)
    task = asyncio.ensure_future(bulk.start_all(hub, "burst", ["s1"]))
    await asyncio.sleep(0.1)
    hub.limit = 1
    await asyncio.wait_for(task, 5)
    tries = [t for t, _, _ in hub.events]
    assert tries[1] - tries[0] <= float(retry_after) + 0.3
