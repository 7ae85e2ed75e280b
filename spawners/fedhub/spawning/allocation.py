"""The user's allocations as the quota service reads them, and the refusal of a spawn at a centre
where the allocation is used up, before anything is submitted."""

from __future__ import annotations

from ..errors import user_error
from ..logins import usable_login
from ..quota.client import entry_for, fetch_report, used_up
from ..request import SpawnRequest


class AllocationCheck:
    """One spawner's view of its user's allocations."""

    def __init__(self, spawner):
        self.spawner = spawner

    async def report(self) -> dict | None:
        """The user's allocations as the quota service reads them (None: no service, or no answer)."""
        spawner = self.spawner
        if not spawner.quota_service_url or not spawner.api_token:
            return None
        return await fetch_report(spawner.quota_service_url, spawner.api_token, spawner.user.name)

    async def check(self, request: SpawnRequest) -> None:
        """Refuse, before anything is submitted, a spawn at a centre whose allocation is used up."""
        spawner = self.spawner
        report = await self.report()
        entry = entry_for(report, request.centre, request.project)
        if entry is None or not used_up(entry):
            return
        others = [cid for cid, entries in report.items() if any(not used_up(e) for e in entries)]
        others += [c.id for c in spawner.federation.centres if c.id not in report and c.id != request.centre
                   and c.accounting is None and usable_login(c, spawner.user.name)]
        core = entry["core_hours"]
        raise user_error(
            f"Your allocation {entry['charge_account']} at {entry['name']} is used up: "
            f"{core['used']:.2f} of {core['limit']:g} core-hours this period "
            f"(since {entry['period_start'][:10]}). "
            + (f"Centres where you still have allocation: {', '.join(others)}." if others
               else "You have no allocation left at any centre."),
            reason="allocation-used-up", status_code=403,
        )
