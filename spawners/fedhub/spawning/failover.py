"""Centre "auto": rank the centres that can run a request (``placement``), then try them in
turn, cancelling and moving on when a job waits too long, a centre stops answering or the job
ends at start. A class's starts are placed one at a time, so each estimate sees the jobs of the
students before it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime

from ..i18n import _, in_language
from .. import runtime
from ..classes.reservations import admit
from ..errors import user_error
from ..logins import usable_login
from ..metrics import FAILOVERS, PLACEMENT_SECONDS, PLACEMENTS
from ..placement import Decision, decide, estimate_all, fitting_options
from ..quota.client import entry_for, fraction_left
from ..request import SpawnRequest
from .launch import JobEnded, MoveOn


def _now() -> datetime:
    return datetime.now()


class Failover:
    """Placement and failover for one spawner."""

    def __init__(self, spawner):
        self.spawner = spawner
        self._turn: asyncio.Lock | None = None  # this start's turn among its class's placements

    async def place(self, request: SpawnRequest) -> Decision:
        """Rank the centres that can run ``request`` for this user (see placement.py)."""
        spawner = self.spawner
        started = time.monotonic()
        hook = spawner.quota_hook
        if hook is None:
            report = await spawner.allocation.report() or {}
            left = {cid: fraction_left(entry_for(report, cid)) for cid in report}
            hook = lambda user, centre: left.get(centre)  # noqa: E731
        options, rejected = fitting_options(spawner.federation, request, spawner.user.name, spawner.monitor.health(), hook)
        clients = {cid: w.client for cid, w in spawner.monitor.watchers.items()}
        estimates = await estimate_all(options, request, spawner.user.name, clients, hook)
        held = spawner.workspace.holdings()
        estimates = [dataclasses.replace(e, data_bytes=held.get(e.centre, 0)) for e in estimates]
        decision = decide(estimates, rejected, now=_now())
        PLACEMENT_SECONDS.observe(time.monotonic() - started)
        return decision

    async def start_anywhere(self, request: SpawnRequest):
        """Place the request, then try the ranked centres in turn (failover). A class's starts are
        placed one after another (each until its sbatch answered), so every estimate already sees
        the jobs of the students before it, and a class one centre cannot hold spreads at once."""
        if request.klass:
            self._turn = runtime.current().class_turns.setdefault(request.klass, asyncio.Lock())
            await self._turn.acquire()
        try:
            return await self._place_and_start(request)
        finally:
            self.end_turn()

    async def _admit_to_reservations(self, request: SpawnRequest) -> None:
        """A student whose membership came with their first login is not yet in the reservations
        the hub made for the class: added before Slurm is asked (its estimate refuses otherwise)."""
        spawner = self.spawner
        for centre_id, _partition, _login, reservation in request.places:
            if reservation != f"fedhub-{request.klass}":
                continue  # a reservation the centre made: its users are the centre's business
            watcher = spawner.monitor.watchers.get(centre_id)
            login = usable_login(watcher.centre, spawner.user.name) if watcher is not None else None
            if login:
                await admit(watcher.client, reservation, login, spawner.log)

    def end_turn(self) -> None:
        """Let the class's next start place itself (once this start's sbatch answered)."""
        turn, self._turn = self._turn, None
        if turn is not None and turn.locked():
            turn.release()

    async def _place_and_start(self, request: SpawnRequest):
        spawner = self.spawner
        spawner.progress_log.emit(_("Asking every centre when such a job would start"), 5)
        await self._admit_to_reservations(request)
        decision = await self.place(request)
        with in_language("en"):  # the operator's log line in English; the user's words below
            spawner.log.info("[%s] placement: %s", spawner.user.name, decision.summary())
        spawner.progress_log.emit(decision.summary(), 8)
        targets = list(decision.ranked[: spawner.failover_attempts])
        if not targets:
            raise user_error(decision.summary(), reason="no-centre", status_code=503)
        PLACEMENTS.labels(targets[0].centre).inc()
        for attempt, estimate in enumerate(targets):
            concrete = request.at(estimate.centre, estimate.partition, estimate.login)
            try:
                return await spawner.launch.start_at(concrete, move_on=attempt + 1 < len(targets))
            except (MoveOn, JobEnded) as e:
                reason = e.reason if isinstance(e, MoveOn) else "ended"
                FAILOVERS.labels(estimate.centre, reason).inc()
                await spawner.launch.cancel_job()
                if attempt + 1 >= len(targets):
                    raise
                following = targets[attempt + 1]
                message = f"{e}. Cancelled there; trying {following.centre} ({following.describe(_now())})"
                spawner.log.warning("[%s] failover: %s", spawner.user.name, message)
                spawner.progress_log.emit(message, 10)
        raise AssertionError("unreachable")
