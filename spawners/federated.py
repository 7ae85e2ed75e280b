"""FederatedSpawner: one JupyterHub spawner for every centre of the federation.

It follows wrapspawner's pattern: the real work is done by a lazily built child spawner
(``CentreSlurmSpawner``, batchspawner's SlurmSpawner configured for the chosen centre), and
the state JupyterHub stores is an envelope around the child's (see ``state.py``). The flow:

  form / REST ``user_options`` -> ``apply_user_options`` validates them into a SpawnRequest
  (400 with the field's message if bad) -> ``start()`` builds the child for that centre ->
  the child submits the job through the centre's route and follows it until the server
  reports its port (``port_report.py``) -> JupyterHub proxies to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from datetime import datetime

from jupyterhub.spawner import Spawner
from traitlets import Any, Bool, Float, Integer, Type, Unicode, default, validate
from wrapspawner import WrapSpawner

from . import port_report  # noqa: F401  (installs the safe port-report endpoint)
from .cancellations import CancelBacklog
from .centre_spawner import CentreSlurmSpawner, JobEnded, MoveOn
from .errors import user_error
from .metrics import FAILOVERS, PLACEMENT_SECONDS, PLACEMENTS, SPAWNS
from .monitor import FederationMonitor
from .placement import Decision, decide, estimate_all, fitting_options
from .progress import ProgressLog
from .quota import QuotaCache
from .federation import Federation, FederationError, load_federation
from .form import options_from_form, render_options_form
from .options import AUTO, OptionError, SpawnRequest, parse_user_options
from .state import StateError, make_state, upgrade_state

_federations: dict[str, Federation] = {}
_quota_caches: dict[tuple, QuotaCache] = {}

# Spawner attributes JupyterHub sets on the spawner it creates; the child gets the same.
_INHERITED_TRAITS = (
    "user", "orm_spawner", "hub", "authenticator", "config", "proxy_spec", "oauth_client_id",
    "cookie_options", "cookie_host_prefix_enabled", "trusted_alt_names", "user_options",
    "internal_ssl", "internal_trust_bundles", "internal_certs_location", "public_hub_url",
    "public_url", "api_token", "cert_paths", "oauth_scopes", "oauth_roles",
    "_deprecated_db_session",
)


def federation_at(path: str) -> Federation:
    """The validated federation for ``path``, loaded once per process."""
    key = os.path.abspath(path)
    if key not in _federations:
        _federations[key] = load_federation(key)
    return _federations[key]


def _now() -> datetime:
    return datetime.now()


def invalid_options(error: OptionError):
    return user_error(f"Invalid {error.field}: {error.message}", reason="invalid-options")


class FederatedSpawner(WrapSpawner):
    """Start a user's notebook server as a Slurm job at the centre they choose."""

    federation_file = Unicode(
        "",
        help="Path of the federation file (YAML) listing the centres. Validated at hub start.",
    ).tag(config=True)

    legacy_centre = Unicode(
        "",
        help="Centre id where servers recorded by plain batchspawner run, so their state loads "
        "after switching a hub to FedHub.",
    ).tag(config=True)

    cancel_backlog_file = Unicode(
        "fedhub-owed-cancels.json",
        help="File keeping jobs whose scancel could not reach their centre; retried until it does.",
    ).tag(config=True)

    cancel_retry_interval = Float(
        30.0, help="Seconds between retries of owed scancels."
    ).tag(config=True)

    child_class = Type(
        CentreSlurmSpawner, Spawner,
        help="Child spawner class; must accept centre= and request= like CentreSlurmSpawner.",
    ).tag(config=True)

    start_timeout = Integer(
        900, help="Seconds a server may take to start, queue wait included."
    ).tag(config=True)

    http_timeout = Integer(
        120, help="Seconds the hub waits for a started server to answer HTTP."
    ).tag(config=True)

    auto_placement = Bool(
        True, help="Offer centre 'auto' (the default when the federation names no default centre): "
        "FedHub picks the centre where the server starts soonest.",
    ).tag(config=True)

    failover_attempts = Integer(
        3, help="With 'auto', how many ranked centres to try before giving up."
    ).tag(config=True)

    failover_pending_timeout = Float(
        300.0, help="With 'auto', seconds a job may stay pending before FedHub cancels it and tries "
        "the next centre.",
    ).tag(config=True)

    monitor_interval = Float(
        20.0, help="Seconds between a centre monitor's scheduler queries (one per centre, for all servers)."
    ).tag(config=True)

    monitor_grace = Float(
        30.0, help="Seconds a centre may fail to answer before it is marked down."
    ).tag(config=True)

    quota_max_age = Float(
        60.0, help="Seconds allocation figures are reused before a centre's accounting is read again."
    ).tag(config=True)

    quota_hook = Any(
        None, allow_none=True,
        help="Callable (hub_user, centre_id) -> fraction of allocation left (0-1) or None. Placement "
        "skips centres at 0 and prefers more left. Default: the centres' Slurm accounting.",
    ).tag(config=True)

    quota_url = Unicode(
        "",
        help="URL at which notebook servers at the centres reach the fedhub-quota service (the lab "
        "extension's figures). Default: the hub's public URL (JupyterHub.public_url) + "
        "services/fedhub-quota/, when any centre keeps accounts.",
    ).tag(config=True)

    @default("quota_url")
    def _default_quota_url(self):
        from .quota_service import SERVICE_NAME

        if not self.public_hub_url or not any(c.accounting for c in self.federation.centres):
            return ""
        base = self.public_hub_url.rstrip("/")
        base = base[: -len("/hub")] if base.endswith("/hub") else base
        return f"{base}/services/{SERVICE_NAME}/"

    @validate("federation_file")
    def _check_federation_file(self, proposal):
        path = proposal["value"]
        if path:
            try:
                federation_at(path)
            except FederationError as e:
                raise ValueError(f"c.FederatedSpawner.federation_file: {e}") from None
        return path

    def __init__(self, **kwargs):
        self.request: SpawnRequest | None = None
        self.centre_id: str | None = None
        self.progress_log = ProgressLog()
        super().__init__(**kwargs)
        if self.federation_file:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return
            self.cancel_backlog.ensure_retrying()  # scancels owed from before a hub restart

    # ------------------------------------------------------------------ federation and options

    @property
    def federation(self) -> Federation:
        if not self.federation_file:
            raise RuntimeError("set c.FederatedSpawner.federation_file to the federation file's path")
        return federation_at(self.federation_file)

    @property
    def monitor(self) -> FederationMonitor:
        return FederationMonitor.of(self.federation, interval=self.monitor_interval, grace=self.monitor_grace)

    @property
    def quota(self) -> QuotaCache:
        return _quota_caches.setdefault((id(self.federation), self.quota_max_age),
                                        QuotaCache(self.federation, max_age=self.quota_max_age))

    async def _check_allocation(self, request: SpawnRequest) -> None:
        """Refuse, before anything is submitted, a spawn at a centre whose allocation is used up."""
        figures = await self.quota.for_user(self.user.name, fresh=True)
        allocation = figures.get(request.centre, (None, None))[0]
        if allocation is None or not allocation.used_up:
            return
        others = [cid for cid, (a, _) in figures.items() if a is not None and not a.used_up]
        others += [c.id for c in self.federation.centres if c.id not in figures and c.id != request.centre
                   and c.accounts.account_for(self.user.name) is not None]
        raise user_error(
            f"Your allocation {allocation.account} at {self.federation.centre(request.centre).name} is used up: "
            f"{allocation.core_hours_used:.2f} of {allocation.core_hours_limit:g} core-hours this period "
            f"(since {allocation.period_start:%Y-%m-%d}). "
            + (f"Centres where you still have allocation: {', '.join(others)}." if others
               else "You have no allocation left at any centre."),
            reason="allocation-used-up", status_code=403,
        )

    @property
    def cancel_backlog(self) -> CancelBacklog:
        return CancelBacklog.at(self.cancel_backlog_file, self.federation, self.cancel_retry_interval)

    @default("options_form")
    def _default_options_form(self):
        return lambda spawner: render_options_form(
            spawner.federation, spawner.user.name, spawner.user_options,
            health=spawner.monitor.health(), allow_auto=spawner.auto_placement,
        )

    @default("options_from_form")
    def _default_options_from_form(self):
        def from_form(form_data, spawner):
            try:
                return options_from_form(spawner.federation, form_data, spawner.user.name,
                                         allow_auto=spawner.auto_placement).to_user_options()
            except OptionError as e:
                raise invalid_options(e) from None
        return from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return lambda spawner, user_options: spawner.apply_request(user_options)

    def apply_request(self, user_options) -> SpawnRequest:
        """Validate user options (form or API) into the request this spawn will run."""
        try:
            self.request = parse_user_options(self.federation, user_options, self.user.name,
                                              allow_auto=self.auto_placement)
        except OptionError as e:
            self.log.info("[%s] rejected user options: %s", self.user.name, e)
            raise invalid_options(e) from None
        return self.request

    # ------------------------------------------------------------------ child

    def construct_child(self):
        if self.child_spawner is None:
            centre = self.federation.centre(self.centre_id) if self.centre_id else None
            if centre is None:
                raise RuntimeError(f"centre {self.centre_id!r} is not in the federation file")
            inherited = {name: getattr(self, name) for name in _INHERITED_TRAITS
                         if self.has_trait(name) and getattr(self, name) is not None}
            self.child_spawner = self.child_class(
                centre=centre, request=self.request, cancel_backlog=self.cancel_backlog,
                watcher=self.monitor.watcher(centre.id), progress_log=self.progress_log,
                quota_url=self.quota_url,
                **inherited, **self.child_config,
            )
            # No clear_state() here (wrapspawner does one): it would blank the api_token just passed.
            if self.child_state:
                self.child_spawner.load_state(self.child_state)
        return self.child_spawner

    def _child_config_for(self, request: SpawnRequest) -> dict:
        """The child's settings, in batchspawner's req_* vocabulary (stored in state)."""
        return {
            "req_partition": request.partition,
            "req_nprocs": str(request.cores),
            "req_memory": f"{request.memory_mb}M",
            "req_runtime": str(request.walltime_s // 60),
            "req_username": request.account,
        }

    # ------------------------------------------------------------------ Spawner contract

    async def start(self):
        if self.request is None:  # apply_user_options was configured away: validate here
            self.apply_request(self.user_options)
        self.progress_log.restart()
        self.monitor.ensure_running()
        self.cancel_backlog.ensure_retrying()  # jobs owed from before a restart
        try:
            if self.request.centre == AUTO:
                return await self._start_anywhere(self.request)
            await self._check_allocation(self.request)
            return await self._start_at(self.request)
        finally:
            self.progress_log.finish()

    async def _start_at(self, request: SpawnRequest, *, move_on: bool = False):
        """Start the server at ``request.centre`` (a concrete centre and partition)."""
        self.request = request
        self.child_spawner = None
        self.child_state = {}
        self.centre_id = request.centre
        self.child_config = self._child_config_for(request)
        self.construct_child()
        if move_on:
            self.child_spawner.pending_timeout = self.failover_pending_timeout
            self.child_spawner.may_move_on = True
        try:
            result = await self.child_spawner.start()
        except MoveOn:
            raise
        except Exception:
            SPAWNS.labels(request.centre, "failed").inc()
            raise
        SPAWNS.labels(request.centre, "started").inc()
        return result

    async def place(self, request: SpawnRequest) -> Decision:
        """Rank the centres that can run ``request`` for this user (see placement.py)."""
        started = time.monotonic()
        hook = self.quota_hook
        if hook is None:
            left = await self.quota.fraction_left(self.user.name)
            hook = lambda user, centre: left.get(centre)  # noqa: E731
        options, rejected = fitting_options(self.federation, request, self.user.name,
                                            self.monitor.health(), hook)
        clients = {cid: w.client for cid, w in self.monitor.watchers.items()}
        estimates = await estimate_all(options, request, self.user.name, clients, hook)
        decision = decide(estimates, rejected, now=_now())
        PLACEMENT_SECONDS.observe(time.monotonic() - started)
        return decision

    async def _start_anywhere(self, request: SpawnRequest):
        """Place the request, then try the ranked centres in turn (failover)."""
        self.progress_log.emit("Asking every centre when such a job would start", 5)
        decision = await self.place(request)
        self.log.info("[%s] placement: %s", self.user.name, decision.summary())
        self.progress_log.emit(decision.summary(), 8)
        targets = list(decision.ranked[: self.failover_attempts])
        if not targets:
            raise user_error(decision.summary(), reason="no-centre", status_code=503)
        PLACEMENTS.labels(targets[0].centre).inc()
        for attempt, estimate in enumerate(targets):
            concrete = dataclasses.replace(request, centre=estimate.centre, partition=estimate.partition,
                                           account=estimate.account)
            try:
                return await self._start_at(concrete, move_on=attempt + 1 < len(targets))
            except (MoveOn, JobEnded) as e:
                reason = e.reason if isinstance(e, MoveOn) else "ended"
                FAILOVERS.labels(estimate.centre, reason).inc()
                await self.child_spawner.stop()  # cancels the job, or owes the scancel
                if attempt + 1 >= len(targets):
                    raise
                following = targets[attempt + 1]
                message = f"{e}. Cancelled there; trying {following.centre} ({following.describe(_now())})"
                self.log.warning("[%s] failover: %s", self.user.name, message)
                self.progress_log.emit(message, 10)
        raise AssertionError("unreachable")

    async def poll(self):
        if self.child_spawner is None:
            return 0 if not self.centre_id else 1
        self.cancel_backlog.ensure_retrying()
        return await self.child_spawner.poll()

    async def stop(self, now=False):
        if self.child_spawner is not None:
            await self.child_spawner.stop(now)

    def report_port(self, port: int) -> None:
        if self.child_spawner is not None:
            self.child_spawner.report_port(port)

    async def progress(self):
        async for event in self.progress_log.follow():
            yield event

    # ------------------------------------------------------------------ state

    def get_state(self):
        state = Spawner.get_state(self)
        if self.child_spawner is not None:
            self.child_state = self.child_spawner.get_state()
        if self.centre_id and self.child_state:
            state.update(make_state(
                self.centre_id, self.request.as_dict() if self.request else None,
                self.child_config, self.child_state,
            ))
        return state

    def load_state(self, state):
        Spawner.load_state(self, state)
        try:
            current = upgrade_state(state, self.legacy_centre or None)
        except StateError as e:
            self.log.error("[%s] cannot restore server state: %s", self.user.name, e)
            return
        if not current:
            return
        self.centre_id = current["centre"]
        self.child_config = dict(current["child_conf"])
        self.child_state = dict(current["child_state"])
        if current.get("request"):
            self.request = SpawnRequest(**current["request"])
        try:
            self.construct_child()
        except RuntimeError as e:
            self.log.error("[%s] cannot restore server at %s: %s", self.user.name, self.centre_id, e)

    def clear_state(self):
        Spawner.clear_state(self)
        if self.child_spawner is not None:
            self.child_spawner.clear_state()
        self.child_spawner = None
        self.child_state = {}
        self.child_config = {}
        self.centre_id = None
        self.request = None
