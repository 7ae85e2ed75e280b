"""FederatedSpawner: one JupyterHub spawner for every centre of the federation.

This module is JupyterHub's spawner contract and nothing else; the work is done by collaborators,
one per concern, each holding the spawner it serves:

    settings.SpawnerSettings   every c.FederatedSpawner setting (the class inherits them)
    intake.RequestIntake       the form and the options -> a validated SpawnRequest (or a 400)
    allocation.AllocationCheck the quota service's figures; a used-up allocation refused
    failover.Failover          centre "auto": placement, then the ranked centres in turn
    launch.ServerLaunch        one job at one centre: sbatch, Slurm's states, port, tunnel, TLS
    ending.SessionEnding       the session saved before the walltime ends, restored by a later start
    successor, continuation    the same server continued by a new job at another centre
    state                      the stored state's versions and their upgrades

The flow of a spawn: ``apply_user_options`` -> intake -> ``start`` -> (failover ->) launch ->
JupyterHub proxies to the server. ``poll``/``stop`` ask the job (``slurm.job.SlurmJob``); the
kernels the server started at centres (``kernels.ServerKernels``) live and end with it.
"""

from __future__ import annotations

import asyncio
import inspect
from urllib.parse import quote

from jupyterhub.spawner import Spawner
from traitlets import default

from ..errors import quiet_user_error_tracebacks
from ..federation import Centre, Federation, federation_at
from ..i18n import DEFAULT as DEFAULT_LANGUAGE, use_language
from ..jobs import tls
from ..kernels.server_kernels import ServerKernels
from ..request import AUTO, SpawnRequest
from ..slurm.cancellations import CancelBacklog
from ..slurm.job import JobOwner, SlurmJob
from ..slurm.monitor import FederationMonitor
from ..slurm.sweep import JobSweeper
from ..statedir import hub_id
from ..jobs.progress import ProgressLog
from .allocation import AllocationCheck
from .failover import Failover
from .form import render_options_form
from .intake import RequestIntake
from .ending import SessionEnding
from .workspace import SpawnerWorkspace
from .launch import ServerLaunch
from .settings import SpawnerSettings
from .state import StateError, make_state, upgrade_state


class FederatedSpawner(SpawnerSettings, Spawner):
    """Start a user's notebook server as a Slurm job at the centre they choose, or the soonest."""

    def __init__(self, **kwargs):
        self.request: SpawnRequest | None = None  # what this spawn runs (validated)
        self.job: SlurmJob | None = None  # its job, once placed
        self.tunnel: dict | None = None  # tunnel mode: {"node", "port", "local_port"} of this server
        self._tunnel_open = False
        self.progress_log = ProgressLog()
        self._port_reported = asyncio.Event()
        self._submitting: asyncio.Task | None = None
        self._starting = False
        self.language = DEFAULT_LANGUAGE  # the user's language at the last start (i18n/): progress, the lab
        self.continuing = None  # continuation.ContinueRun while the server continues at another centre
        self._tls_pems: dict[str, str] = {}  # internal SSL: the server's key and certificates (move_certs)
        self.kernels = ServerKernels(self)  # this server's kernels at centres (kernels/)
        self.intake = RequestIntake(self)
        self.allocation = AllocationCheck(self)
        self.failover = Failover(self)
        self.launch = ServerLaunch(self)
        self.ending = SessionEnding(self)
        self.workspace = SpawnerWorkspace(self)
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

    # ------------------------------------------------------------------ what every part shares

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

    # ------------------------------------------------------------------ internal SSL

    @default("ssl_alt_names")
    def _default_ssl_alt_names(self):
        """The proxy and the hub reach a direct centre's server at its node's address: the
        certificate must name every node address the federation lists (the centre is not known
        yet when JupyterHub makes it)."""
        names: list[str] = []
        for centre in self.federation.centres:
            names += [n for n in tls.alt_names(centre) if n not in names]
        return names

    async def create_certs(self):
        """JupyterHub's contract: make the server's key and a certificate of the notebooks' CA
        naming its addresses (``ssl_alt_names``). Made in memory, off the event loop, with an EC
        key (``jobs/tls.py``); the answer's "paths" are where the job script writes them on the
        node (JupyterHub's certipy wrote an RSA pair into the hub's store, holding the event loop
        about 0.1 s per spawn)."""
        names = self.ssl_alt_names
        if callable(names):  # JupyterHub allows a callable (maybe async) of the spawner
            names = names(self)
            if inspect.isawaitable(names):
                names = await names
        alt_names = (["DNS:localhost", "IP:127.0.0.1"] if self.ssl_alt_names_include_local else []) + list(names)
        self._tls_pems = await tls.signed_pair(self.internal_certs_location,
                                               self.internal_trust_bundles[tls.NOTEBOOKS_CA],
                                               f"user-{self.user.name}", alt_names)
        return dict(tls.NODE_PATHS)

    async def move_certs(self, paths):
        """JupyterHub's contract: make the server's key, certificate and CA bundle available to it.
        They travel in the job's secrets file and are written on the node into a private directory
        (``jobs/tls.py``); the paths JupyterHub would pass are replaced there by the job script."""
        if paths != tls.NODE_PATHS:  # made elsewhere (a subclass's create_certs): read the files
            self._tls_pems = tls.read_pems(paths)
        return paths

    # ------------------------------------------------------------------ options (intake.py)

    @default("options_form")
    def _default_options_form(self):
        async def form(spawner):
            spawner.intake.take_language()
            await spawner.refresh_projects()
            return render_options_form(
                spawner.federation, spawner.user.name, spawner.user_options,
                health=spawner.monitor.health(), allow_auto=spawner.auto_placement,
                facts=await spawner.form_facts(),
                estimate_url=f"{spawner.hub.base_url}api/fedhub/users/{quote(spawner.user.name, safe='')}/start-estimate",
                classes=[] if spawner.name else await spawner.classes_in_session(),  # a class: the default server
                snapshots=spawner.ending.offers(),
            )
        return form

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda form_data, spawner: spawner.intake.options_from_form(form_data)

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return lambda spawner, user_options: spawner.apply_request_async(user_options)

    async def apply_request_async(self, user_options) -> SpawnRequest:
        """Who asks, then the user's projects, then the options (``apply_user_options``)."""
        return await self.intake.apply_request_async(user_options)

    def apply_request(self, user_options) -> SpawnRequest:
        """Validate user options (form or API) into the request this spawn will run."""
        return self.intake.apply_request(user_options)

    async def refresh_projects(self, timeout: float = 5.0) -> None:
        await self.intake.refresh_projects(timeout)

    async def form_facts(self, timeout: float = 3.0) -> dict[str, dict]:
        return await self.intake.form_facts(timeout)

    def classes(self):
        return self.intake.classes()

    async def classes_in_session(self) -> list[dict]:
        return await self.intake.classes_in_session()

    # ------------------------------------------------------------------ allocations and placement

    async def allocations(self) -> dict | None:
        """The user's allocations as the quota service reads them (None: no service, or no answer)."""
        return await self.allocation.report()

    async def check_allocation(self, request: SpawnRequest) -> None:
        """Refuse, before anything is submitted, a spawn or kernel at a centre whose allocation is used up."""
        await self.allocation.check(request)

    async def place(self, request: SpawnRequest):
        """Rank the centres that can run ``request`` for this user (``placement.py``)."""
        return await self.failover.place(request)

    @property
    def expects_port(self) -> bool:
        """Whether a port report is awaited: while starting, or while a successor starts."""
        successor = self.continuing.successor if self.continuing is not None else None
        return self.pending == "spawn" or (successor is not None and successor.waiting_for_port)

    def report_port(self, port: int) -> None:
        """The server's own token reported its port (``hub/api/port_report.py``): the successor's,
        while the server continues at another centre, else this start's."""
        successor = self.continuing.successor if self.continuing is not None else None
        if successor is not None and successor.waiting_for_port and self.pending != "spawn":
            successor.launch.report_port(port)
        else:
            self.launch.report_port(port)

    # ------------------------------------------------------------------ JupyterHub's contract

    async def start(self):
        """JupyterHub's contract: start the server and return its (ip, port) once it answers.

        The request is placed (a chosen centre, or "auto": the failover tries the ranked centres),
        its job submitted and followed through Slurm; progress messages go to ``progress``. An
        error a user can act on is a ``SpawnException`` whose message names the cause and the fix;
        nothing is left running after a failed start (the job is cancelled, or owed a scancel)."""
        use_language(self.language)  # the progress page's messages, in the words of who started it
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
                address = await self.failover.start_anywhere(self.request)
            else:
                await self.allocation.check(self.request)
                address = await self.launch.start_at(self.request)
            await self.ending.restore()  # a saved session, when the start asked for one
            return address
        finally:
            self._starting = False
            self.progress_log.finish()

    def get_env(self):
        """JupyterHub's environment for the server, and the user's language for the lab
        (``jobs/server.py`` makes it JupyterLab's default). Its name starts with JUPYTERHUB_ as
        every variable sent to a job must (``slurm/routes.py``: what login nodes' sshd accept)."""
        env = super().get_env()
        env["JUPYTERHUB_FEDHUB_LANGUAGE"] = self.language
        return env

    async def poll(self):
        """JupyterHub's contract: None while the server runs, an exit status once it has stopped.

        None while the job is starting, pending, running, or Slurm cannot be asked (a centre that
        does not answer never ends a server); 1 once Slurm answered that the job is over; 0 when
        there is no job at all. Also restores a tunnel after a hub restart and follows the kernels."""
        if self._starting or (self._submitting is not None and not self._submitting.done()):
            return None
        if self.job is None or not self.job.job_id:
            return 0
        self.backlog.ensure_retrying()
        if self.tunnel is not None and not self._tunnel_open:
            try:
                await self.launch.reopen_tunnel()
            except Exception as e:  # the job may still run: keep the server, try again next poll
                self.log.warning("%s could not restore its tunnel yet: %s", self._where, e)
        await self.kernels.check()
        alive = await self.job.alive()
        if alive is None:
            self.log.warning("%s %s is not answering; keeping the server", self._where, self.job.centre.name)
            return None
        if alive:
            seen = await self.job.observe(fresh=False)
            await self.ending.check(seen.info if seen.answered else None)  # near the end: save the session
            if self.ready:
                self.workspace.record_soon(self.job.centre, self.job.login, every=self.workspace_record_interval)
            return None
        self.log.info("%s job %s is gone", self._where, self.job.job_id)
        return 1

    async def stop(self, now=False):
        """JupyterHub's contract: stop the server. Ends its kernels at centres, cancels the job
        (waiting, bounded, for a submission still in flight) and confirms it ended, unless ``now``;
        a centre that does not answer is owed the scancel until it does. Closes the tunnel."""
        job = self.job
        try:
            await self.kernels.stop_all()
            await self.launch.cancel_job(now)
        finally:
            await self.launch.close_tunnel()
        if job is not None and job.job_id:  # what the server changed reaches the next start, anywhere
            self.workspace.record_soon(job.centre, job.login)

    async def progress(self):
        """JupyterHub's contract: the start's progress events ({"progress", "message"}) for the
        progress page: placement, submission, Slurm's state and reason, the port, the tunnel."""
        async for event in self.progress_log.follow():
            yield event

    def get_state(self):
        """JupyterHub's contract: what the database keeps to find this server again after a hub
        restart: the centre, the request, the job (id, login, submission), the tunnel and the
        kernels at centres, in the current version of ``state.py``."""
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
        """JupyterHub's contract: restore from ``get_state``'s dict, of any version FedHub, plain
        batchspawner or wrapspawner stored (upgraded by ``state.py``). A state that cannot be read
        is logged with the reason and leaves the spawner empty (the server shows as stopped)."""
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
        """JupyterHub's contract: forget the server once it is stopped (its job, request, tunnel)."""
        super().clear_state()
        self.job = None
        self.request = None
        self.tunnel, self._tunnel_open = None, False
