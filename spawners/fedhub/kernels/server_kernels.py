"""The kernels a notebook server runs at centres, each a Slurm job of its own.

A kernel belongs to the server that asked for it: its record lives in that server's JupyterHub
state (so a hub restart finds it), it is charged and checked like the server's own job, and
stopping the server ends it. One record's life:

    submitted -> pending (Slurm's reason and estimate) -> starting (the job runs; the launcher
    binds the kernel's ports on its node) -> ready (the launcher reported them; the relay is
    open) -> ended (shut down, cancelled, or Slurm ended the job: its reason kept)

A restart keeps the job: the kernel exits (asked to, or on its own: "exited"), the launcher waits
for the hub's word, and starts a new kernel on the same ports ("restarting" -> "ready"). The launcher proves who it is with a one-time token whose hash alone is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from .. import runtime
from ..federation import Centre
from ..slurm.job import SlurmJob
from ..slurm.owner import JobOwner
from ..slurm.sshmux import ForwardError
from ..slurm.tunnels import CentreTunnel
from ..request import SpawnRequest
from ..jobs.progress import pending_message
from ..jobs.server import nodes_api_url
from ..jobs.tls import NOTEBOOKS_CA, client_pair, secret_env
from ..jobs.kernel import kernel_environment, kernel_job_spec, kernel_script
from ..i18n import _
from .relay import PORT_NAMES, Relay, close_relay, open_relay, restore_relay

log = logging.getLogger("JupyterHub.fedhub.kernels")

LIVE = ("submitted", "pending", "starting", "ready", "exited", "restarting")
def kernels_by_id() -> dict[str, "ServerKernels"]:
    """Kernel id -> the server's kernels it belongs to (how a launcher's call finds its kernel)."""
    return runtime.current().kernels


class KernelError(Exception):
    """A kernel request that cannot be met; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class KernelRecord:
    id: str
    centre: str
    request: dict
    job: dict
    token_hash: str
    status: str = "submitted"
    message: str = ""
    node: str = ""
    node_ports: dict = field(default_factory=dict)
    relay: dict | None = None
    restart: bool = False
    exit_code: int | None = None
    started: float = field(default_factory=time.time)
    running_since: str = ""  # when Slurm started the job (ISO 8601), for when its walltime ends
    # the kernel's HMAC key and CurveZMQ keys, until the launcher collected them over the hub's
    # TLS API (kept in the server's state meanwhile, so a hub restart while the job queues loses nothing)
    keys: dict = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def public(self) -> dict:
        """What the notebook server is told (no token hash, no forwards)."""
        out = {"id": self.id, "centre": self.centre, "status": self.status, "message": self.message,
               "exit_code": self.exit_code,
               "job_id": self.job.get("job_id", ""), "node": self.node,
               "request": SpawnRequest.from_dict(self.request).to_user_options()}
        if self.status == "ready" and self.relay:
            relay = Relay.from_state(self.relay)
            out["connection"] = {"ip": relay.ip, **relay.ports}
        if self.running_since:  # the lab offers a move before the walltime ends the kernel
            ends = datetime.fromisoformat(self.running_since) + timedelta(seconds=self.request["walltime_s"])
            out["ends_at"] = ends.isoformat()
        return out


class ServerKernels:
    """The kernels of one server (``spawner``: its FederatedSpawner, which lends the federation,
    the monitor, the owed-scancel backlog, the hub's URLs and a way to save its state)."""

    def __init__(self, spawner):
        self.spawner = spawner
        self.records: dict[str, KernelRecord] = {}
        self.jobs: dict[str, SlurmJob] = {}
        self._reported: dict[str, asyncio.Event] = {}
        self._followers: dict[str, asyncio.Task] = {}
        self._relays_open: set[str] = set()
        self._watch_task: asyncio.Task | None = None
        self._change = asyncio.Event()  # set (and replaced) whenever any kernel's status changes
        self.accepting = True  # False while the server stops: no new kernel may slip in

    # ------------------------------------------------------------------ state

    def to_state(self) -> list[dict]:
        return [asdict(r) for r in self.records.values() if r.live]

    def load(self, records: list[dict]) -> None:
        for data in records:
            record = KernelRecord(**data)
            centre = self.spawner.federation.centre(record.centre)
            if centre is None or not record.job.get("job_id"):
                continue
            self.records[record.id] = record
            kernels_by_id()[record.id] = self
            self.jobs[record.id] = self._job(centre, record.job["login"], record.job["job_id"],
                                             record.job.get("submission", ""))
            self._reported[record.id] = asyncio.Event()
            if record.status != "ready":
                self._follow(record.id)
        if self.records:
            self._watch()

    def _save(self) -> None:
        self.spawner.save_state_now()
        self._changed()

    def _changed(self) -> None:
        """Wake the requests waiting for a kernel's next status (``wait_for_change``)."""
        event, self._change = self._change, asyncio.Event()
        event.set()

    async def wait_for_change(self, kernel_id: str, known_status: str, timeout: float) -> None:
        """Return once the kernel's status is no longer ``known_status`` (or it is gone), or after
        ``timeout`` s: a waiting notebook server learns of "ready" at once, without polling."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = self.records.get(kernel_id)
            remaining = deadline - loop.time()
            if record is None or record.status != known_status or remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._change.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _job(self, centre: Centre, login: str, job_id: str = "", submission: str = "") -> SlurmJob:
        watcher = self.spawner.monitor.watcher(centre.id)
        owner = JobOwner(self.spawner.owner.hub_id, self.spawner.user.name, self.spawner.name or "", kind="kernel")
        return SlurmJob(centre, login, owner, client=watcher.client, backlog=self.spawner.backlog, watcher=watcher,
                        job_id=job_id, submission=submission)

    # ------------------------------------------------------------------ start

    async def start(self, request: SpawnRequest, keys: dict[str, str]) -> KernelRecord:
        """Submit the kernel's job; return once Slurm accepted it (the rest is followed).
        ``keys`` (HMAC key, CurveZMQ pair) wait here for the launcher: never in the job."""
        spawner = self.spawner
        if not self.accepting or spawner.job is None or spawner.centre is None:
            raise KernelError(_("the notebook server is not running (or is stopping); no kernel was started"), 409)
        centre = spawner.federation.centre(request.centre)
        await spawner.check_allocation(request)
        if centre.network.tunnel:
            try:
                await CentreTunnel(centre).ensure_return_path(spawner.hub.api_url)
            except ForwardError as e:
                raise KernelError(_("{problem}. Nothing was submitted.").format(problem=e), 503) from None
        nodes_api = nodes_api_url(centre, spawner.hub.api_url) or spawner.hub.api_url
        kernel_id, token = secrets.token_hex(8), secrets.token_urlsafe(32)
        job = self._job(centre, request.login)
        output_dir = spawner.job_output_dir
        env = kernel_environment(kernel_id, token, nodes_api, centre)
        try:
            if spawner.internal_ssl:
                env.update(secret_env(await client_pair(spawner.internal_certs_location,
                                                        spawner.internal_trust_bundles[NOTEBOOKS_CA], spawner.user.name)))
            await job.submit(kernel_job_spec(centre, request, spawner.user.name, output_dir),
                             kernel_script(centre, request.login, output_dir, spawner.job_logs_kept,
                                           tls=spawner.internal_ssl), env, output_dir)
        except Exception as e:
            raise KernelError(_("{centre} did not accept the kernel's job: {problem}").format(centre=centre.name, problem=e),
                              503) from None
        record = KernelRecord(kernel_id, centre.id, request.as_dict(), job.to_state(), _hash(token),
                              message=_("Submitted to {centre} as job {job}").format(centre=centre.name, job=job.job_id), keys=dict(keys))
        self.records[kernel_id], self.jobs[kernel_id] = record, job
        kernels_by_id()[kernel_id] = self
        self._reported[kernel_id] = asyncio.Event()
        self._save()
        spawner.log.info("%s kernel %s submitted to %s as job %s (%s)", spawner._where, kernel_id, centre.id,
                         job.job_id, request.describe())
        self._follow(kernel_id)
        self._watch()
        return record

    def _follow(self, kernel_id: str) -> None:
        task = self._followers.get(kernel_id)
        if task is None or task.done():
            self._followers[kernel_id] = asyncio.ensure_future(self._follow_job(kernel_id))

    async def _follow_job(self, kernel_id: str) -> None:
        """Pending -> running -> the launcher's report -> the relay; or ended, with the reason."""
        record, job = self.records[kernel_id], self.jobs[kernel_id]
        centre = job.centre
        interval = self.spawner.startup_poll_interval
        try:
            while record.live and record.status in ("submitted", "pending"):
                seen = await job.observe()
                if seen.answered and seen.gone:
                    return await self._ended(kernel_id, seen.info, _("before the kernel started"))
                if seen.answered and seen.info.is_running:
                    record.status, record.node = "starting", seen.info.node or ""
                    start = seen.info.start_time or datetime.now(timezone.utc)
                    record.running_since = (start if start.tzinfo else start.astimezone()).isoformat()
                    record.message = _("Job {job} running at {centre} on {node}; starting the kernel").format(
                        job=job.job_id, centre=centre.name, node=record.node)
                    self._save()
                    break
                if seen.answered:
                    record.status, record.message = "pending", pending_message(centre.name, seen.info)
                    self._changed()
                await asyncio.sleep(interval)
            while record.live and not record.node_ports:
                try:
                    await asyncio.wait_for(self._reported[kernel_id].wait(), 5)
                except asyncio.TimeoutError:
                    seen = await job.observe()
                    if seen.answered and seen.gone:
                        return await self._ended(kernel_id, seen.info, _("before the kernel reported its ports"))
            if record.live:
                await self._open(kernel_id)
        except Exception:
            log.exception("%s following kernel %s failed", self.spawner._where, kernel_id)

    async def _open(self, kernel_id: str) -> None:
        record, job = self.records[kernel_id], self.jobs[kernel_id]
        address = await job.client.node_address(record.node) if record.node else "127.0.0.1"
        try:
            relay = await open_relay(job.centre, address, record.node_ports, self.spawner.centre)
        except ForwardError as e:
            record.message = _("the hub cannot reach the kernel at {centre}: {problem}").format(centre=job.centre.name, problem=e)
            log.error("%s kernel %s: %s", self.spawner._where, kernel_id, record.message)
            await self.shutdown(kernel_id, reason=record.message)
            return
        record.relay, record.status = relay.to_state(), "ready"
        record.message = _("Kernel running at {centre} on {node} (job {job})").format(centre=job.centre.name, node=record.node,
                                                                                      job=job.job_id)
        self._relays_open.add(kernel_id)
        self._save()
        log.info("%s kernel %s ready at %s:%s via %s", self.spawner._where, kernel_id, record.node,
                 record.node_ports.get("shell_port"), relay.ip)

    # ------------------------------------------------------------------ the launcher's calls

    def check_token(self, kernel_id: str, token: str) -> KernelRecord:
        record = self.records.get(kernel_id)
        if record is None or not hmac.compare_digest(record.token_hash, _hash(token or "")):
            raise KernelError("unknown kernel or wrong token", 403)
        return record

    def hand_keys(self, kernel_id: str) -> dict[str, str]:
        """The kernel's keys, for its launcher (once it has them it reports its ports, and the
        hub forgets them)."""
        record = self.records[kernel_id]
        if not record.keys:
            raise KernelError("this kernel's keys were handed out already", 410)
        return dict(record.keys)

    def report_ports(self, kernel_id: str, node: str, ports: dict) -> None:
        record = self.records[kernel_id]
        clean = {name: int(ports[name]) for name in PORT_NAMES if 0 < int(ports.get(name, 0)) < 65536}
        if len(clean) != len(PORT_NAMES):
            raise KernelError(f"the launcher must report all of {', '.join(PORT_NAMES)}", 400)
        if record.node_ports and record.node_ports != clean:  # a restart on other ports: new relay
            self._relays_open.discard(kernel_id)
            record.relay = None
        record.node_ports, record.restart, record.exit_code = clean, False, None
        record.keys = {}  # the launcher wrote them into its private connection file
        if node and not record.node:
            record.node = node
        if record.status == "restarting" and record.relay:
            record.status = "ready"
        self._save()
        self._reported[kernel_id].set()
        if record.status != "ready":
            self._follow(kernel_id)

    def instruction(self, kernel_id: str) -> str:
        """What the launcher does once its kernel exited: start it again, wait for word, or end."""
        record = self.records.get(kernel_id)
        if record is None or not record.live:
            return "exit"
        return "restart" if record.restart else "wait"

    def report_exit(self, kernel_id: str, code: int) -> str:
        """The kernel process ended while its job runs (a restart asked for, or a crash)."""
        record = self.records[kernel_id]
        if record.live and not record.restart:
            record.status, record.exit_code = "exited", int(code)
            record.message = _("The kernel at {centre} exited with {code}").format(centre=self.jobs[kernel_id].centre.name,
                                                                                  code=code)
            self._save()
        return self.instruction(kernel_id)

    # ------------------------------------------------------------------ the notebook server's calls

    def get(self, kernel_id: str) -> KernelRecord:
        record = self.records.get(kernel_id)
        if record is None:
            raise KernelError(_("no kernel {kernel} on this server").format(kernel=kernel_id), 404)
        return record

    def request_restart(self, kernel_id: str) -> None:
        record = self.get(kernel_id)
        if record.status == "restarting":
            return
        if record.status not in ("ready", "exited"):
            raise KernelError(_("kernel {kernel} is {status}; only a started kernel restarts").format(
                kernel=kernel_id, status=record.status), 409)
        record.restart, record.status = True, "restarting"
        record.message = _("Restarting the kernel at {centre} (same job)").format(centre=self.jobs[kernel_id].centre.name)
        self._save()

    async def shutdown(self, kernel_id: str, reason: str = "shut down") -> None:
        """End the kernel's job and close its relay; the record goes."""
        record = self.get(kernel_id)
        job = self.jobs.get(kernel_id)
        record.status, record.message = "ended", reason
        self._changed()
        task = self._followers.pop(kernel_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if record.relay:
            await close_relay(Relay.from_state(record.relay), self.spawner.federation)
        if job is not None:
            outcome = await job.cancel(self.spawner.stop_confirm_timeout)
            log.info("%s kernel %s (job %s at %s) %s: %s", self.spawner._where, kernel_id, job.job_id,
                     job.centre.id, reason, outcome)
        self._forget(kernel_id)

    async def _ended(self, kernel_id: str, info, when: str = "") -> None:
        record, job = self.records[kernel_id], self.jobs[kernel_id]
        # a job still COMPLETING after its time limit ends as TIMEOUT: say what Slurm will record
        final = "TIMEOUT" if info and info.state == "COMPLETING" and info.reason == "TimeLimit" else getattr(info, "state", "")
        state = f"{final}" + (f" ({info.reason})" if info and info.reason and info.reason != "None" else "") \
            if info else _("no longer listed by Slurm")
        record.status = "ended"
        record.message = (_("Kernel job {job} at {centre} ended {when}: {state}") if when else
                          _("Kernel job {job} at {centre} ended: {state}")).format(job=job.job_id, centre=job.centre.name,
                                                                                   when=when, state=state)
        log.warning("%s kernel %s: %s", self.spawner._where, kernel_id, record.message)
        if record.relay:
            await close_relay(Relay.from_state(record.relay), self.spawner.federation)
            record.relay = None
        self._relays_open.discard(kernel_id)
        job.released = True
        self._save()

    def _forget(self, kernel_id: str) -> None:
        self.records.pop(kernel_id, None)
        kernels_by_id().pop(kernel_id, None)
        self.jobs.pop(kernel_id, None)
        self._reported.pop(kernel_id, None)
        self._relays_open.discard(kernel_id)
        self._save()

    # ------------------------------------------------------------------ supervision

    async def check(self) -> None:
        """From the server's poll: end records whose job Slurm ended; restore relays after a
        hub restart."""
        waiting_at = {self.jobs[k].centre.id: self.jobs[k].centre for k, r in self.records.items()
                      if r.status in ("submitted", "pending", "starting") and not r.node_ports}
        for centre in waiting_at.values():
            if centre.network.tunnel:  # after a hub restart: the way back for launchers yet to call
                try:
                    await CentreTunnel(centre).ensure_return_path(self.spawner.hub.api_url)
                except ForwardError as e:
                    log.error("%s the hub could not bind its forward back from %s's login node, so kernels "
                              "waiting there cannot reach it yet (tried again every %s s): %s", self.spawner._where,
                              centre.name, self.spawner.monitor_interval, e)
        for kernel_id, record in list(self.records.items()):
            job = self.jobs[kernel_id]
            if record.status in ("ready", "exited", "restarting", "starting"):
                alive = await job.alive()
                if alive is False:
                    seen = await job.observe(fresh=False)
                    await self._ended(kernel_id, seen.info if seen.answered else None)
                    continue
            if record.status in ("ready", "exited", "restarting") and record.relay and kernel_id not in self._relays_open:
                try:
                    await restore_relay(Relay.from_state(record.relay), self.spawner.federation)
                    self._relays_open.add(kernel_id)
                except ForwardError as e:
                    log.warning("%s kernel %s: relay not restored yet: %s", self.spawner._where, kernel_id, e)

    def _watch(self) -> None:
        """Every monitor interval while kernels live: a job Slurm ended shows as ended (the
        monitor's snapshot answers; no extra Slurm call)."""
        if self._watch_task is None or self._watch_task.done():
            self._watch_task = asyncio.ensure_future(self._watch_loop())

    async def _watch_loop(self) -> None:
        while any(r.live for r in self.records.values()):
            await asyncio.sleep(self.spawner.monitor_interval)
            try:
                await self.check()
            except Exception:
                log.exception("%s checking kernels failed", self.spawner._where)

    async def stop_all(self) -> None:
        self.accepting = False  # until the server starts again
        for kernel_id in list(self.records):
            await self.shutdown(kernel_id, reason="the notebook server stopped")
