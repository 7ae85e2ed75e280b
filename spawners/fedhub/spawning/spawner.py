"""FederatedSpawner: one JupyterHub spawner for every centre of the federation.

The flow: form / REST ``user_options`` -> ``apply_user_options`` validates them into a
``SpawnRequest`` (400 naming the field if bad) -> ``start()`` places the request (a chosen
centre, or "auto": ``placement.py``) -> a ``SlurmJob`` (``slurm.job``) submits the server's job
(``server_job.py``) and follows it through Slurm -> the server reports its port
(``port_report.py``) and listens -> JupyterHub proxies to it. ``poll``/``stop`` ask the job;
the stored state is the job's (``state.py``).

The spawner is JupyterHub's plain ``Spawner``: everything Slurm is in the job lifecycle, which
a kernel provisioner uses too.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import quote
from datetime import datetime, timezone

from jupyterhub.spawner import Spawner
from jupyterhub.scopes import has_scope
from traitlets import Any, Bool, Float, Integer, Unicode, default, validate

from ..federation import Centre, Federation, FederationError, federation_at
from ..logins import usable_login
from ..metrics import FAILOVERS, PLACEMENT_SECONDS, PLACEMENTS, SPAWNS
from ..projects import refresh_associations
from ..quota.client import entry_for, fetch_report, fraction_left, used_up
from ..quota.service import SERVICE_NAME as QUOTA_SERVICE
from ..slurm.cancellations import CancelBacklog
from ..slurm.commands import JobInfo, SchedulerError, SchedulerUnreachable
from ..slurm.job import JobOwner, SlurmJob, SubmissionUncertain
from ..slurm.monitor import FederationMonitor
from ..slurm.routes import LoginRefused
from ..slurm.sweep import JobSweeper
from ..slurm.tunnels import CentreTunnel, ForwardError
from ..jobs.kernel import kernel_centres
from ..kernels.server_kernels import ServerKernels
from ..statedir import hub_id
from ..units import format_memory_mb
from ..classes.roles import TEACH_SCOPE, stored_class
from ..classes.model import ClassSpec
from ..classes.reservations import ReservationCache, admit
from ..classes.spawn import class_request
from ..errors import quiet_user_error_tracebacks, user_error
from .form import centre_facts, options_from_form, render_options_form
from ..request import AUTO, OptionError, SpawnRequest, parse_user_options
from ..placement import Decision, decide, estimate_all, fitting_options
from ..jobs.progress import ProgressLog, pending_message
from ..jobs.server import DEFAULT_SCRIPT, batch_script, job_environment, job_log, job_spec, nodes_api_url
from ..jobs import tls
from .state import StateError, make_state, upgrade_state

_reservations = ReservationCache()  # the form's "reservation ... : active", shared by all users
_class_turns: dict[str, asyncio.Lock] = {}  # class -> one placement at a time (see _start_anywhere)


def _now() -> datetime:
    return datetime.now()


def invalid_options(error: OptionError):
    return user_error(f"Invalid {error.field}: {error.message}", reason="invalid-options")


class JobEnded(RuntimeError):
    """The job ended before its notebook server came up."""


class MoveOn(RuntimeError):
    """Give up on this centre and let placement try the next one (``reason`` for metrics)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class FederatedSpawner(Spawner):
    """Start a user's notebook server as a Slurm job at the centre they choose, or the soonest."""

    # ------------------------------------------------------------------ configuration

    federation_file = Unicode(
        "", help="Path of the federation file (YAML) listing the centres. Validated at hub start.",
    ).tag(config=True)

    state_dir = Unicode(
        "/var/lib/fedhub",
        help="Directory (made 0700) for FedHub's own state: owed scancels and the hub's identity. "
        "It must survive hub restarts (a volume in Kubernetes).",
    ).tag(config=True)

    legacy_centre = Unicode(
        "", help="Centre id where servers recorded by plain batchspawner run, so their state loads "
        "after switching a hub to FedHub.",
    ).tag(config=True)

    cancel_retry_interval = Float(30.0, help="Seconds between retries of owed scancels.").tag(config=True)

    start_timeout = Integer(900, help="Seconds a server may take to start, queue wait included.").tag(config=True)

    http_timeout = Integer(120, help="Seconds the hub waits for a started server to answer HTTP.").tag(config=True)

    auto_placement = Bool(
        True, help="Offer centre 'auto' (the default when the federation names no default centre): "
        "FedHub picks the centre where the server starts soonest.",
    ).tag(config=True)

    failover_attempts = Integer(3, help="With 'auto', how many ranked centres to try.").tag(config=True)

    failover_pending_timeout = Float(
        300.0, help="With 'auto', seconds a job may stay pending before FedHub cancels it and tries the next centre.",
    ).tag(config=True)

    class_failover_pending_timeout = Float(
        30.0, help="The same for a class's starts: a class begins at a set time, so a student's job that "
                   "waits at one of the class's centres moves to the next sooner.",
    ).tag(config=True)

    monitor_interval = Float(
        20.0, help="Seconds between a centre monitor's scheduler queries (one per centre, for all servers).",
    ).tag(config=True)

    monitor_grace = Float(30.0, help="Seconds a centre may fail to answer before it is marked down.").tag(config=True)

    scheduler_timeout = Float(
        20.0, help="Seconds one scheduler command may take before the centre counts as not answering.",
    ).tag(config=True)

    startup_poll_interval = Float(
        0.5, help="Seconds between scheduler queries while someone waits on a job (starting, stopping).",
    ).tag(config=True)

    listen_probe_interval = Float(
        0.1, help="Seconds between TCP probes of the reported port until the server listens.",
    ).tag(config=True)

    stop_confirm_timeout = Integer(15, help="Seconds stop() waits for Slurm to confirm the job ended.").tag(config=True)

    sweep_interval = Float(
        300.0, help="Seconds between sweeps that cancel jobs of this hub that no server knows. The first "
        "runs min(60 s, this) after hub start; jobs younger than that are left alone.",
    ).tag(config=True)

    job_output_dir = Unicode(
        ".fedhub/jobs", help="Directory, relative to the user's home at the centre, for job output "
        "(fedhub-<job id>.log). Made if missing.",
    ).tag(config=True)

    job_logs_kept = Integer(10, help="Newest job logs kept in job_output_dir; older ones are deleted.").tag(config=True)

    batch_script = Unicode(
        DEFAULT_SCRIPT,
        help="Job script (Jinja). It sees only operator settings and quoted hub values: login, centre, "
        "environment, prologue, cmd, tidy_logs. Resources are sbatch arguments, never #SBATCH lines.",
    ).tag(config=True)

    quota_hook = Any(
        None, allow_none=True,
        help="Callable (hub_user, centre_id) -> fraction of allocation left (0-1) or None. Placement "
        "skips centres at 0 and prefers more left. Default: the quota service's figures.",
    ).tag(config=True)

    quota_service_url = Unicode(
        "", help="Where the hub asks the fedhub-quota service (set by fedhub's hub setup); empty: no "
        "allocation checks.",
    ).tag(config=True)

    @default("ssl_alt_names")
    def _default_ssl_alt_names(self):
        """The proxy and the hub reach a direct centre's server at its node's address: the
        certificate must name every node address the federation lists (the centre is not known
        yet when JupyterHub makes it)."""
        names: list[str] = []
        for centre in self.federation.centres:
            names += [n for n in tls.alt_names(centre) if n not in names]
        return names

    async def move_certs(self, paths):
        """JupyterHub's internal SSL: the server's key, certificate and CA bundle travel in the job's
        secrets file and are written on the node into a private directory (``spawning/tls.py``);
        the paths JupyterHub would pass are replaced there by the job script."""
        self._tls_pems = tls.read_pems(paths)
        return paths

    @validate("federation_file")
    def _check_federation_file(self, proposal):
        path = proposal["value"]
        if path:
            try:
                federation_at(path)
            except FederationError as e:
                raise ValueError(f"c.FederatedSpawner.federation_file: {e}") from None
        return path

    # ------------------------------------------------------------------ set-up

    def __init__(self, **kwargs):
        self.request: SpawnRequest | None = None
        self.job: SlurmJob | None = None
        self.progress_log = ProgressLog()
        self._port_reported = asyncio.Event()
        self._submitting: asyncio.Task | None = None
        self._turn: asyncio.Lock | None = None  # this start's turn among its class's placements
        self._starting = False
        self.tunnel: dict | None = None  # tunnel mode: {"node", "port", "local_port"} of this server
        self._tunnel_open = False
        self.kernels = ServerKernels(self)  # this server's kernels at centres (kernels/)
        self._tls_pems: dict[str, str] = {}  # internal SSL: the server's key and certificates (move_certs)
        super().__init__(**kwargs)
        quiet_user_error_tracebacks(self.log)
        self.listen_ip = self.ip  # where servers bind at direct centres; self.ip then names the node
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.federation_file:
            self.backlog.ensure_retrying()  # scancels owed from before a hub restart
            self.sweeper.ensure_running()

    @property
    def federation(self) -> Federation:
        if not self.federation_file:
            raise RuntimeError("set c.FederatedSpawner.federation_file to the federation file's path")
        return federation_at(self.federation_file)

    @property
    def monitor(self) -> FederationMonitor:
        return FederationMonitor.of(self.federation, interval=self.monitor_interval, grace=self.monitor_grace,
                                    fast_interval=self.startup_poll_interval, timeout=self.scheduler_timeout)

    @property
    def backlog(self) -> CancelBacklog:
        return CancelBacklog.at(self.state_dir, self.federation, self.cancel_retry_interval, self.scheduler_timeout)

    @property
    def owner(self) -> JobOwner:
        return JobOwner(hub_id(self.state_dir), self.user.name, self.name or "")

    @property
    def sweeper(self) -> JobSweeper:
        settle = min(60.0, self.sweep_interval)
        return JobSweeper.of(self.federation, self.owner.job_name, interval=self.sweep_interval, first_delay=settle,
                             min_age_s=settle, timeout=self.scheduler_timeout)

    @property
    def centre(self) -> Centre | None:
        return self.job.centre if self.job is not None else None

    @property
    def _where(self) -> str:
        return f"[{self.user.name}/{self.name or '-'} @ {self.centre.id if self.centre else '?'}]"

    def _job_at(self, centre: Centre, login: str, job_id: str = "", submission: str = "") -> SlurmJob:
        watcher = self.monitor.watcher(centre.id)
        return SlurmJob(centre, login, self.owner, client=watcher.client, backlog=self.backlog, watcher=watcher,
                        job_id=job_id, submission=submission)

    # ------------------------------------------------------------------ options

    @default("options_form")
    def _default_options_form(self):
        async def form(spawner):
            await spawner.refresh_projects()
            return render_options_form(
                spawner.federation, spawner.user.name, spawner.user_options,
                health=spawner.monitor.health(), allow_auto=spawner.auto_placement,
                facts=await spawner.form_facts(),
                estimate_url=f"{spawner.hub.base_url}api/fedhub/users/{quote(spawner.user.name, safe='')}/start-estimate",
                classes=await spawner.classes_in_session(),
            )
        return form

    async def refresh_projects(self, timeout: float = 5.0) -> None:
        """Read the user's Slurm associations where a centre takes projects from them (kept for a
        minute); a centre that does not answer keeps what was read before."""
        async def one(watcher):
            await asyncio.wait_for(refresh_associations(watcher.centre, self.user.name, watcher.client), timeout)
        watchers = [w for w in self.monitor.watchers.values()
                    if w.centre.projects is not None and w.centre.projects.slurm_associations]
        for watcher, result in zip(watchers, await asyncio.gather(*(one(w) for w in watchers),
                                                                  return_exceptions=True)):
            if isinstance(result, BaseException):
                self.log.warning("[%s] could not read the Slurm associations at %s: %s", self.user.name,
                                 watcher.centre.id, result)

    async def form_facts(self, timeout: float = 3.0) -> dict[str, dict]:
        """What the form shows beside each centre: idle cores (the monitor's node figures, at
        most 30 s old and shared by every page view) and the allocation left (the quota
        service's cache). A centre that does not answer within ``timeout`` shows neither."""
        async def figures(watcher):
            return await asyncio.wait_for(watcher.node_figures(), timeout)
        watchers = [w for w in self.monitor.watchers.values() if w.up]
        found = await asyncio.gather(*(figures(w) for w in watchers), return_exceptions=True)
        seen = {w.centre.id: (w, f) for w, f in zip(watchers, found) if not isinstance(f, BaseException)}
        cores = {cid: {p.name: f.idle_cpus(p.name) for p in w.centre.partitions} for cid, (w, f) in seen.items()}
        pending = {cid: f.pending for cid, (w, f) in seen.items()}
        report = None
        if self.quota_service_url:
            report = await fetch_report(self.quota_service_url, self._form_token(), self.user.name,
                                        timeout=timeout, fresh=False)
        return centre_facts(report, cores, pending)

    _form_token_value: str | None = None
    _form_token_until: float = 0.0

    def _form_token(self) -> str:
        """A token of the user's that may only call the quota service, for the form (a server's
        own token exists only once it starts); made once an hour, not per page view."""
        if self._form_token_value is None or time.time() > self._form_token_until:
            self._form_token_value = self.user.new_api_token(
                note="FedHub spawn form: allocation figures", expires_in=3600,
                scopes=[f"access:services!service={QUOTA_SERVICE}"])
            self._form_token_until = time.time() + 3000
        return self._form_token_value

    @default("options_from_form")
    def _default_options_from_form(self):
        def from_form(form_data, spawner):
            if form_data.get("class"):  # "Start for <class>": the class's settings, checked on apply
                return {"class": str(form_data["class"][0])[:64]}
            try:
                return options_from_form(spawner.federation, form_data, spawner.user.name,
                                         allow_auto=spawner.auto_placement).to_user_options()
            except OptionError as e:
                raise invalid_options(e) from None
        return from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return lambda spawner, user_options: spawner.apply_request_async(user_options)

    async def apply_request_async(self, user_options) -> SpawnRequest:
        self.check_requester(user_options)
        await self.refresh_projects()
        return self.apply_request(user_options)

    def check_requester(self, user_options) -> None:
        """A server started on someone else's behalf: an admin may start it as asked; a teacher
        only as a start for a class they teach, so it gets the class's resources and charges the
        class's project, never whatever the teacher writes against the student's allocation."""
        handler = getattr(self, "handler", None)
        requester = getattr(handler, "current_user", None)
        if requester is None or (requester.name == self.user.name and isinstance(requester, type(self.user))):
            return
        scopes = getattr(handler, "parsed_scopes", set())
        if has_scope("admin:servers", scopes):
            return
        klass = user_options.get("class") if isinstance(user_options, dict) else None
        if isinstance(klass, str) and has_scope(f"{TEACH_SCOPE}!group={klass}", scopes, db=handler.db):
            return
        self.log.warning("[%s] %s asked to start this server outside a class they teach: refused",
                         self.user.name, requester.name)
        raise user_error(f"{requester.name} may start {self.user.name}'s server only as a start for a class they "
                         f"teach ({{\"class\": \"<name>\"}}): it then gets the class's resources and charges the "
                         "class's project", reason="not-your-class", status_code=403)

    def apply_request(self, user_options) -> SpawnRequest:
        """Validate user options (form or API) into the request this spawn will run."""
        try:
            if isinstance(user_options, dict) and "class" in user_options:
                self.request = class_request(self._class_of_user(user_options["class"]), self.federation,
                                             self.user.name, user_options, datetime.now(timezone.utc))
            else:
                self.request = parse_user_options(self.federation, user_options, self.user.name,
                                                  allow_auto=self.auto_placement)
        except OptionError as e:
            self.log.info("[%s] rejected user options: %s", self.user.name, e)
            raise invalid_options(e) from None
        return self.request

    def classes(self) -> list[ClassSpec]:
        """The classes this server's user is a student of (their groups that are classes)."""
        found = (stored_class(group, self.federation) for group in self.user.groups)
        return sorted((spec for spec in found if spec is not None), key=lambda spec: spec.name)

    async def classes_in_session(self) -> list[dict]:
        """The user's classes in session now, as the form offers them ("Start for <class>"), with
        whether each reservation is active (Slurm asked at most every 30 s per reservation)."""
        now = datetime.now(timezone.utc)
        offered = []
        for spec in self.classes():
            session = spec.session_at(now)
            if session is None:
                continue
            where = ", ".join(self.federation.centre(c.centre).name for c in spec.centres)
            summary = f"{spec.cores} core{'s' if spec.cores != 1 else ''}, {format_memory_mb(spec.memory_mb)} memory, at {where}"
            for place in spec.centres:
                name = spec.reservation_at(place.centre)
                watcher = self.monitor.watchers.get(place.centre)
                if name and watcher is not None:
                    try:
                        state = await asyncio.wait_for(_reservations.state(watcher.client, name), 5)
                    except (asyncio.TimeoutError, SchedulerError, SchedulerUnreachable):
                        state = "unknown"
                    summary += f"; reservation {name} at {watcher.centre.name}: {state}"
            offered.append({"name": spec.name, "title": spec.title, "until": f"{session.end.astimezone():%H:%M}",
                            "summary": summary})
        return offered

    def _class_of_user(self, name) -> ClassSpec:
        spec = next((spec for spec in self.classes() if spec.name == name), None)
        if spec is None:
            raise OptionError("class", f"{str(name)[:48]!r} is not a class you are a student of")
        return spec

    # ------------------------------------------------------------------ allocations

    async def allocations(self) -> dict | None:
        """The user's allocations as the quota service reads them (None: no service, or no answer)."""
        if not self.quota_service_url or not self.api_token:
            return None
        return await fetch_report(self.quota_service_url, self.api_token, self.user.name)

    async def check_allocation(self, request: SpawnRequest) -> None:
        """Refuse, before anything is submitted, a spawn at a centre whose allocation is used up."""
        report = await self.allocations()
        entry = entry_for(report, request.centre, request.project)
        if entry is None or not used_up(entry):
            return
        others = [cid for cid, entries in report.items() if any(not used_up(e) for e in entries)]
        others += [c.id for c in self.federation.centres if c.id not in report and c.id != request.centre
                   and c.accounting is None and usable_login(c, self.user.name)]
        core = entry["core_hours"]
        raise user_error(
            f"Your allocation {entry['charge_account']} at {entry['name']} is used up: "
            f"{core['used']:.2f} of {core['limit']:g} core-hours this period "
            f"(since {entry['period_start'][:10]}). "
            + (f"Centres where you still have allocation: {', '.join(others)}." if others
               else "You have no allocation left at any centre."),
            reason="allocation-used-up", status_code=403,
        )

    # ------------------------------------------------------------------ start

    async def start(self):
        if self.request is None:  # apply_user_options was configured away: validate here
            self.apply_request(self.user_options)
        self._starting = True
        self.kernels.accepting = True
        self.progress_log.restart()
        self.monitor.ensure_running()
        self.backlog.ensure_retrying()
        self.sweeper.ensure_running()
        try:
            if self.request.centre == AUTO:
                return await self._start_anywhere(self.request)
            await self.check_allocation(self.request)
            return await self._start_at(self.request)
        finally:
            self._starting = False
            self.progress_log.finish()

    async def _start_at(self, request: SpawnRequest, *, move_on: bool = False):
        """Start the server at ``request.centre`` (a concrete centre and partition)."""
        self.request = request
        centre = self.federation.centre(request.centre)
        self.job = self._job_at(centre, request.login)
        self.port = 0
        self._port_reported.clear()
        try:
            result = await self._run_server_job(centre, request, move_on)
        except MoveOn:
            raise
        except Exception:
            SPAWNS.labels(centre.id, "failed").inc()
            raise
        SPAWNS.labels(centre.id, "started").inc()
        return result

    async def _return_path(self, centre: Centre) -> CentreTunnel:
        """Tunnel mode: the login node's forwards back to the hub (clear error if it cannot)."""
        tunnel = CentreTunnel(centre)
        try:
            await tunnel.ensure_return_path(self.hub.api_url)
        except ForwardError as e:
            raise user_error(f"{e}. Nothing was submitted.", reason="tunnel", status_code=503) from None
        return tunnel

    async def _run_server_job(self, centre: Centre, request: SpawnRequest, move_on: bool):
        name = centre.name
        self.progress_log.emit(f"Submitting to {name}: {request.describe()}", 10)
        tunnel = None
        # a tunnel centre's node is on a private network reached only through the login node's forward
        self.ip = "0.0.0.0" if centre.network.tunnel else self.listen_ip
        if centre.network.tunnel:
            tunnel = await self._return_path(centre)
        nodes_api = nodes_api_url(centre, self.hub.api_url)
        # the quota service, reached through the hub's API (TLS; the hub passes it on over loopback)
        quota_url = f"{nodes_api or self.hub.api_url.rstrip('/')}/fedhub/quota/" if self.quota_service_url else ""
        script = batch_script(self.batch_script, centre, request.login, self.get_args(), quota_url,
                              self.job_output_dir, self.job_logs_kept, kernel_centres(self.federation, self.user.name, request),
                              tls_lines=tls.script_lines() if self.internal_ssl else "")
        env = job_environment(self.get_env(), self.hub.api_url, nodes_api)
        if self.internal_ssl:
            env.update(tls.secret_env(self._tls_pems))
        spec = job_spec(centre, request, self.user.name, self.job_output_dir)
        self.log.info("%s submitting to %s via %s: %s", self._where, name, self.job.client.route.describe(),
                      request.describe())
        # Shielded: if the hub gives up on this start while sbatch runs, the job id is still
        # recorded, so stop() can cancel the job instead of leaving it behind.
        self._submitting = asyncio.ensure_future(self.job.submit(spec, script, env, self.job_output_dir))
        self._submitting.add_done_callback(lambda _: self._end_turn())  # the next student's placement sees it
        try:
            await asyncio.shield(self._submitting)
        except SubmissionUncertain as e:
            raise user_error(
                f"{name} did not confirm the submission in time. If it accepted the job, FedHub will find it "
                "and cancel it. Try again later or choose another centre.",
                log_message=f"{self._where} submission unconfirmed: {e}", reason="centre-unreachable",
                status_code=503) from None
        except SchedulerUnreachable as e:
            raise user_error(
                f"{name} is not answering, nothing was submitted. Try again later or choose another centre.",
                log_message=f"{self._where} submission failed: {e}", reason="centre-unreachable", status_code=503,
            ) from None
        except LoginRefused as e:
            raise user_error(f"{name} refused your login {request.login!r}: {e}. Ask the centre to enable it, "
                             "or choose another centre.", reason="login-refused", status_code=403) from None
        except SchedulerError as e:
            raise user_error(f"{name} refused the job: {e}", reason="job-refused") from None
        self.log.info("%s submitted job %s", self._where, self.job.job_id)
        self.progress_log.emit(f"Submitted to {name} as job {self.job.job_id}", 20)

        info = await self._wait_until_running(move_on)
        self.ip = await self.job.client.node_address(info.node) if info.node else "127.0.0.1"
        self.progress_log.emit(f"Job {self.job.job_id} running at {name} on node {info.node}; "
                               "waiting for the notebook server to start", 60)
        await self._wait_for_port()
        if tunnel is not None:
            await self._open_tunnel(tunnel, self.ip, self.port)
        await self._wait_for_listening()
        self.progress_log.emit(f"Notebook server on {info.node} is listening on port "
                               f"{self.tunnel['port'] if self.tunnel else self.port}", 90)
        self.log.info("%s job %s serving at %s:%s", self._where, self.job.job_id, self.ip, self.port)
        return self.ip, self.port

    async def _wait_until_running(self, may_move_on: bool) -> JobInfo:
        job, name = self.job, self.job.centre.name
        last_message = None
        submitted = time.monotonic()
        while True:
            seen = await job.observe()
            if not seen.answered:
                if may_move_on and not seen.centre_up:
                    raise MoveOn("down", f"{name} stopped answering while job {job.job_id} waited")
                message = f"{name}'s scheduler is not answering; still waiting"
                self.log.warning("%s %s (%s)", self._where, message, seen.error)
                if message != last_message:
                    self.progress_log.emit(message)
                    last_message = message
                await asyncio.sleep(self.startup_poll_interval)
                continue
            if seen.gone:
                self._raise_ended(seen.info)
            info = seen.info
            if info.is_running:
                return info
            if info.held_by_allocation:
                message = (f"Slurm will not start job {job.job_id} at {name}: the allocation's limit is "
                           f"reached ({info.reason}). Choose another centre, or ask the centre for more allocation.")
                if may_move_on:
                    raise MoveOn("allocation", message.rstrip("."))
                raise user_error(message, reason="allocation-used-up", status_code=403)
            waited = time.monotonic() - submitted
            patience = self.class_failover_pending_timeout if self.request and self.request.klass \
                else self.failover_pending_timeout
            if may_move_on and waited > patience:
                raise MoveOn("pending", f"job {job.job_id} still pending at {name} after {waited:.0f} s "
                                        f"({info.reason or 'no reason given'})")
            message = pending_message(name, info)
            if message != last_message:
                self.progress_log.emit(message, 30)
                last_message = message

    async def _open_tunnel(self, tunnel: CentreTunnel, node: str, port: int, local_port: int | None = None) -> None:
        """Forward a hub-side port through the login node to the server; the proxy routes there."""
        try:
            local_port = await tunnel.open_server(node, port, local_port)
        except ForwardError as e:
            raise user_error(f"{e}. The hub cannot reach the server at {tunnel.centre.name}.", reason="tunnel",
                             status_code=503) from None
        self.tunnel = {"node": node, "port": port, "local_port": local_port}
        self._tunnel_open = True
        self.ip, self.port = "127.0.0.1", local_port
        self.log.info("%s forwarding 127.0.0.1:%s to %s:%s through %s's login node", self._where, local_port,
                      node, port, tunnel.centre.id)

    async def _reopen_tunnel(self) -> None:
        """After a hub restart: the return path and this server's forward, on the same local port
        (JupyterHub's route points there)."""
        if self.tunnel is None or self._tunnel_open or self.job is None:
            return
        tunnel = await self._return_path(self.job.centre)
        await self._open_tunnel(tunnel, self.tunnel["node"], self.tunnel["port"], self.tunnel["local_port"])

    async def _close_tunnel(self) -> None:
        if self.tunnel is not None and self.job is not None:
            await CentreTunnel(self.job.centre).close_server(self.tunnel["node"], self.tunnel["port"],
                                                             self.tunnel["local_port"])
        self.tunnel, self._tunnel_open = None, False

    def report_port(self, port: int) -> None:
        self.port = port
        self._port_reported.set()

    async def _wait_for_port(self):
        checks = 0
        while self.port == 0:
            try:
                await asyncio.wait_for(self._port_reported.wait(), self.startup_poll_interval)
            except asyncio.TimeoutError:
                pass
            checks += 1
            if self.port == 0 and checks % 10 == 0:  # every ~5 s
                await self._raise_if_job_ended()

    async def _wait_for_listening(self):
        """Return once the server accepts connections on its port.

        The port is reported before the server has even imported Jupyter; handing it to
        JupyterHub at once makes the hub's exponential back-off overshoot the real start by
        seconds. A cheap probe every ``listen_probe_interval`` avoids that.
        """
        checks = 0
        while True:
            if await self._answers_http():
                return
            checks += 1
            if checks % 50 == 0:  # every ~5 s
                await self._raise_if_job_ended()
            await asyncio.sleep(self.listen_probe_interval)

    async def _answers_http(self) -> bool:
        """Whether something answers HTTP at (ip, port). A bare TCP connect is not enough: through
        a tunnel the hub's ssh accepts the connection even while nothing listens at the node. With
        internal SSL the server must also complete a TLS handshake with a certificate of the hub's CA."""
        writer = None
        context = self._probe_ssl_context()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                self.ip, self.port, ssl=context, server_hostname=self.ip if context else None), 3)
            writer.write(b"HEAD / HTTP/1.0\r\n\r\n")
            return bool(await asyncio.wait_for(reader.read(1), 2))
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            if writer is not None:
                writer.close()

    def _probe_ssl_context(self) -> ssl.SSLContext | None:
        if not self.internal_ssl:
            return None
        from jupyterhub.utils import make_ssl_context
        app = self.user.settings
        return make_ssl_context(app["internal_ssl_key"], app["internal_ssl_cert"], cafile=app["internal_ssl_ca"])

    async def _raise_if_job_ended(self):
        seen = await self.job.observe()
        if seen.gone:
            self._raise_ended(seen.info)

    def _raise_ended(self, info: JobInfo | None):
        job = self.job
        state = (f"state {info.state}" + (f", reason {info.reason}" if info.reason else "")) if info \
            else "no longer known to Slurm"
        job_id = job.job_id
        job.job_id = ""  # nothing left to cancel
        raise JobEnded(f"Job {job_id} at {job.centre.name} ended before the notebook server started ({state}). "
                       f"Its output is in {job_log(self.job_output_dir, job_id)} there.")

    # ------------------------------------------------------------------ placement and failover

    async def place(self, request: SpawnRequest) -> Decision:
        """Rank the centres that can run ``request`` for this user (see placement.py)."""
        started = time.monotonic()
        hook = self.quota_hook
        if hook is None:
            report = await self.allocations() or {}
            left = {cid: fraction_left(entry_for(report, cid)) for cid in report}
            hook = lambda user, centre: left.get(centre)  # noqa: E731
        options, rejected = fitting_options(self.federation, request, self.user.name, self.monitor.health(), hook)
        clients = {cid: w.client for cid, w in self.monitor.watchers.items()}
        estimates = await estimate_all(options, request, self.user.name, clients, hook)
        decision = decide(estimates, rejected, now=_now())
        PLACEMENT_SECONDS.observe(time.monotonic() - started)
        return decision

    async def _start_anywhere(self, request: SpawnRequest):
        """Place the request, then try the ranked centres in turn (failover). A class's starts are
        placed one after another (each until its sbatch answered), so every estimate already sees
        the jobs of the students before it, and a class one centre cannot hold spreads at once."""
        if request.klass:
            self._turn = _class_turns.setdefault(request.klass, asyncio.Lock())
            await self._turn.acquire()
        try:
            return await self._place_and_start(request)
        finally:
            self._end_turn()

    async def _admit_to_reservations(self, request: SpawnRequest) -> None:
        """A student whose membership came with their first login is not yet in the reservations
        the hub made for the class: added before Slurm is asked (its estimate refuses otherwise)."""
        for centre_id, _, _, reservation in request.places:
            if reservation != f"fedhub-{request.klass}":
                continue  # a reservation the centre made: its users are the centre's business
            watcher = self.monitor.watchers.get(centre_id)
            login = usable_login(watcher.centre, self.user.name) if watcher is not None else None
            if login:
                await admit(watcher.client, reservation, login, self.log)

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None and turn.locked():
            turn.release()

    async def _place_and_start(self, request: SpawnRequest):
        self.progress_log.emit("Asking every centre when such a job would start", 5)
        await self._admit_to_reservations(request)
        decision = await self.place(request)
        self.log.info("[%s] placement: %s", self.user.name, decision.summary())
        self.progress_log.emit(decision.summary(), 8)
        targets = list(decision.ranked[: self.failover_attempts])
        if not targets:
            raise user_error(decision.summary(), reason="no-centre", status_code=503)
        PLACEMENTS.labels(targets[0].centre).inc()
        for attempt, estimate in enumerate(targets):
            concrete = request.at(estimate.centre, estimate.partition, estimate.login)
            try:
                return await self._start_at(concrete, move_on=attempt + 1 < len(targets))
            except (MoveOn, JobEnded) as e:
                reason = e.reason if isinstance(e, MoveOn) else "ended"
                FAILOVERS.labels(estimate.centre, reason).inc()
                await self._cancel_job()
                if attempt + 1 >= len(targets):
                    raise
                following = targets[attempt + 1]
                message = f"{e}. Cancelled there; trying {following.centre} ({following.describe(_now())})"
                self.log.warning("[%s] failover: %s", self.user.name, message)
                self.progress_log.emit(message, 10)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ poll and stop

    async def poll(self):
        """None while the server's job is starting, pending, running, or Slurm cannot be asked;
        1 once Slurm answered that it is over; 0 when there is no job at all."""
        if self._starting or (self._submitting is not None and not self._submitting.done()):
            return None
        if self.job is None or not self.job.job_id:
            return 0
        self.backlog.ensure_retrying()
        if self.tunnel is not None and not self._tunnel_open:
            try:
                await self._reopen_tunnel()
            except Exception as e:  # the job may still run: keep the server, try again next poll
                self.log.warning("%s could not restore its tunnel yet: %s", self._where, e)
        await self.kernels.check()
        alive = await self.job.alive()
        if alive is None:
            self.log.warning("%s %s is not answering; keeping the server", self._where, self.job.centre.name)
            return None
        if alive:
            return None
        self.log.info("%s job %s is gone", self._where, self.job.job_id)
        return 1

    async def _cancel_job(self, now: bool = False) -> None:
        if self._submitting is not None and not self._submitting.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._submitting), self.scheduler_timeout)
            except Exception:
                pass
        if self.job is None or not self.job.job_id:
            return
        job_id = self.job.job_id
        self.log.info("%s cancelling job %s", self._where, job_id)
        outcome = await self.job.cancel(0 if now else self.stop_confirm_timeout)
        if outcome == "owed":
            self.log.error("%s could not cancel job %s: %s is not answering. FedHub retries the scancel until "
                           "it does (state dir %s).", self._where, job_id, self.job.centre.name, self.state_dir)
        elif outcome == "unconfirmed" and not now:
            self.log.warning("%s job %s did not end within %s s of scancel", self._where, job_id,
                             self.stop_confirm_timeout)

    async def stop(self, now=False):
        """Cancel the job (waiting, bounded, for a submission still in flight) and confirm it
        ended; close the server's forward (tunnel mode)."""
        try:
            await self.kernels.stop_all()
            await self._cancel_job(now)
        finally:
            await self._close_tunnel()

    async def progress(self):
        async for event in self.progress_log.follow():
            yield event

    # ------------------------------------------------------------------ state

    def get_state(self):
        state = super().get_state()
        if self.job is not None and self.job.job_id:
            state.update(make_state(self.job.centre.id, self.request.as_dict() if self.request else None,
                                    self.job.to_state()))
            if self.tunnel is not None:
                state["tunnel"] = dict(self.tunnel)
            kernels = self.kernels.to_state()
            if kernels:
                state["kernels"] = kernels
        return state

    def save_state_now(self) -> None:
        """Store the state in the hub's database at once (kernels change while the server runs,
        when JupyterHub itself would not save it)."""
        if self.orm_spawner is None:
            return
        from sqlalchemy import inspect  # the session JupyterHub loaded this spawner's row with
        session = inspect(self.orm_spawner).session
        self.orm_spawner.state = self.get_state()
        if session is not None:
            session.commit()

    def load_state(self, state):
        super().load_state(state)
        try:
            current = upgrade_state(state, self.legacy_centre or None)
        except StateError as e:
            self.log.error("[%s] cannot restore server state: %s", self.user.name, e)
            return
        if not current:
            return
        centre = self.federation.centre(current["centre"])
        if centre is None:
            self.log.error("[%s] cannot restore server at %s (job %s): the centre is not in the federation "
                           "file", self.user.name, current["centre"], current["job"]["job_id"])
            return
        if current.get("request"):
            self.request = SpawnRequest.from_dict(current["request"])
        # older shapes may not name the login: the one the mapping gives (the hub user's name by default)
        login = current["job"].get("login") or (self.request.login if self.request else None) \
            or centre.logins.login_for(self.user.name)[0] or self.user.name
        self.job = self._job_at(centre, login, current["job"]["job_id"], current["job"].get("submission") or "")
        if centre.network.tunnel and current.get("tunnel"):
            self.tunnel, self._tunnel_open = dict(current["tunnel"]), False
        self.kernels.load(state.get("kernels") or [])

    def clear_state(self):
        super().clear_state()
        self.job = None
        self.request = None
        self.tunnel, self._tunnel_open = None, False
