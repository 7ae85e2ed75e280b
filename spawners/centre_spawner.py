"""The child spawner: batchspawner's SlurmSpawner, run at one centre of the federation.

It keeps batchspawner's vocabulary (``req_*`` traits, ``batch_script``, job id in state) but
replaces the parts that are unsafe or wrong for a federation:

- Slurm commands go through ``scheduler.SlurmClient`` as argv lists (locally or over ssh),
  never through ``create_subprocess_shell``; resources are sbatch *arguments* built from the
  validated request, so nothing a user typed is in the job script.
- ``user_options`` are never merged into the template.
- A scheduler that does not answer is not a job that ended (batchspawner issue 315): only
  Slurm saying the job is gone makes ``poll()`` report the server stopped.
- Progress messages come from Slurm's answers: job id, pending reason, estimated start, node.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from datetime import datetime

from batchspawner import SlurmSpawner
from traitlets import Any, Bool, Float, Instance, Integer, Unicode, default

from .errors import user_error
from .federation import Centre
from .monitor import CentreSnapshot, CentreWatcher
from .progress import ProgressLog
from .scheduler import JobInfo, JobSpec, SchedulerError, SchedulerUnreachable, SlurmClient


class JobEnded(RuntimeError):
    """The job ended before its notebook server came up."""


class MoveOn(RuntimeError):
    """Give up on this centre and let placement try the next one (``reason`` for metrics)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class CentreSlurmSpawner(SlurmSpawner):
    centre = Instance(Centre, allow_none=True, help="The centre this server runs at (set by FederatedSpawner).")
    request = Any(None, help="The validated SpawnRequest (set by FederatedSpawner).")
    cancel_backlog = Any(None, help="Where a scancel that could not reach the centre is kept for retry.")
    watcher = Instance(CentreWatcher, allow_none=True,
                       help="The centre's monitor; without one the child queries Slurm itself.")
    progress_log = Instance(ProgressLog, help="Where progress messages go (shared across failover).")
    pending_timeout = Float(0, help="Give up (MoveOn) if still pending after this many seconds; 0: never.")
    quota_url = Unicode("", help="Where the notebook server reaches the quota service (set by "
                                 "FederatedSpawner); exported to the job as FEDHUB_QUOTA_URL.")
    may_move_on = Bool(False, help="This attempt may give up (MoveOn) so placement tries the next centre: "
                                   "when the monitor marks the centre down, or Slurm holds the job for "
                                   "its allocation.")

    @default("progress_log")
    def _default_progress_log(self):
        return ProgressLog()

    batch_script = Unicode(
        """#!/bin/bash
# FedHub notebook server for {{username}} at {{centre}}
set -euo pipefail
{{environment}}
{{prologue}}
{{cmd}}
{{epilogue}}
""",
        help="Job script body. Resources are sbatch arguments, not #SBATCH lines; the template "
        "sees only operator settings and the quoted server command (never user options).",
    ).tag(config=True)

    job_output = Unicode(
        "fedhub-%j.log",
        help="sbatch --output, relative to the user's home at the centre (%j is the job id).",
    ).tag(config=True)

    startup_poll_interval = Float(
        0.5, help="Seconds between scheduler queries while the job starts."
    ).tag(config=True)

    listen_probe_interval = Float(
        0.1, help="Seconds between TCP probes of the reported port until the server listens."
    ).tag(config=True)

    stop_confirm_timeout = Integer(
        15, help="Seconds stop() waits for Slurm to confirm the job ended."
    ).tag(config=True)

    scheduler_timeout = Float(
        20.0, help="Seconds one scheduler command may take before the centre counts as not answering."
    ).tag(config=True)

    @default("req_username")
    def _default_req_username(self):
        if self.centre is not None:
            account = self.centre.accounts.account_for(self.user.name)
            if account:
                return account
        return self.user.name

    @default("req_homedir")
    def _default_req_homedir(self):
        return "~"  # the home at the centre, which the hub cannot see

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._port_reported = asyncio.Event()
        self._submit_task: asyncio.Task | None = None
        self._client: SlurmClient | None = None

    # ------------------------------------------------------------------ helpers

    @property
    def client(self) -> SlurmClient:
        if self._client is None:
            self._client = SlurmClient(self.centre, timeout=self.scheduler_timeout)
        return self._client

    @property
    def _where(self) -> str:
        return f"[{self.user.name}/{self.name or '-'} @ {self.centre.id if self.centre else '?'}]"

    def emit(self, message: str, progress: int | None = None) -> None:
        self.progress_log.emit(message, progress)

    def report_port(self, port: int) -> None:
        self.port = port
        self._port_reported.set()

    async def _fresh_snapshot(self) -> CentreSnapshot:
        """What Slurm says now about this job: from the shared watcher, or asked directly."""
        if self.watcher is not None:
            self.watcher.track(self.job_id)
            return await self.watcher.fresh_snapshot()
        started = time.monotonic()
        try:
            jobs = await self.client.jobs([self.job_id], self.req_username)
        except SchedulerUnreachable as e:
            return CentreSnapshot(self.centre.id, started, answered=False, up=True, error=str(e),
                                  tracked=frozenset({self.job_id}))
        return CentreSnapshot(self.centre.id, started, answered=True, up=True, jobs=jobs,
                              tracked=frozenset({self.job_id}))

    def _server_command(self) -> str:
        """The quoted command the job runs: batchspawner's port-reporting wrapper + the server."""
        server = self.centre.singleuser_cmd
        wrapper = os.path.join(os.path.dirname(server), "batchspawner-singleuser")
        return shlex.join([wrapper, server, *self.get_args()])

    def _job_env(self) -> dict[str, str]:
        """Only the Jupyter variables (API token, URLs) travel to the job; sbatch exports them."""
        return {k: v for k, v in self.get_env().items() if k.startswith(("JUPYTERHUB_", "JPY_"))}

    def _fedhub_exports(self) -> str:
        """Which centre the server runs at and where its quota service is, for the lab extension.
        Hub-side values (validated centre ids, operator URLs), quoted; never user options."""
        values = {"FEDHUB_CENTRE": self.centre.id, "FEDHUB_CENTRE_NAME": self.centre.name}
        if self.quota_url:
            values["FEDHUB_QUOTA_URL"] = self.quota_url
        return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items())

    def _job_spec(self) -> JobSpec:
        r = self.request
        gres = None
        if r.gpus:
            kind = self.centre.partition(r.partition).gpu(r.gpu_type)
            gres = f"{kind.gres}:{r.gpus}"
        accounting = self.centre.accounting
        return JobSpec(
            name=f"fedhub-{self.req_username}", partition=r.partition, cores=r.cores,
            memory_mb=r.memory_mb, walltime_s=r.walltime_s, gres=gres, output=self.job_output,
            account=accounting.charge_account(self.user.name) if accounting else None,
        )

    async def _get_batch_script(self, **subvars):
        prologue = "\n".join(p for p in (self.centre.job_prologue, self.req_prologue) if p)
        subvars.update(
            cmd=self._server_command(), prologue=prologue, environment=self._fedhub_exports(), epilogue=self.req_epilogue,
            centre=self.centre.id, username=self.req_username,
        )
        return await super()._get_batch_script(**subvars)

    async def run_command(self, cmd, input=None, env=None):
        raise RuntimeError("FedHub never runs scheduler commands through a shell")

    # ------------------------------------------------------------------ batchspawner's API

    async def submit_batch_script(self):
        script = await self._get_batch_script(**self.get_req_subvars())
        spec = self._job_spec()
        self.log.info("%s submitting to %s via %s: %s", self._where, self.centre.name,
                      self.client.route.describe(), self.request.describe())
        self.job_id = await self.client.submit(spec, script, self.req_username, self._job_env())
        self.log.info("%s submitted job %s", self._where, self.job_id)
        return self.job_id

    async def query_job_status(self):  # kept for batchspawner compatibility
        info = await self.client.job(self.job_id, self.req_username) if self.job_id else None
        self.job_status = f"{info.state} {info.node or ''}".strip() if info else ""
        return info

    async def cancel_batch_job(self):
        await self.client.cancel([self.job_id], self.req_username)

    # ------------------------------------------------------------------ Spawner contract

    async def start(self):
        """Submit the job, follow it through Slurm's states, wait for the server to listen."""
        if self.centre is None or self.request is None:
            raise RuntimeError("CentreSlurmSpawner needs a centre and a request (use FederatedSpawner)")
        self.port = 0
        self.job_id = ""
        self._port_reported.clear()
        return await self._start()

    async def _start(self):
        name = self.centre.name
        self.emit(f"Submitting to {name}: {self.request.describe()}", 10)
        # Shielded: if the hub gives up on this start while sbatch runs, the job id is still
        # recorded, so stop() can cancel the job instead of leaving it behind.
        self._submit_task = asyncio.ensure_future(self._submit())
        try:
            await asyncio.shield(self._submit_task)
        except SchedulerUnreachable as e:
            raise user_error(
                f"{name} is not answering, nothing was submitted. Try again later or choose another centre.",
                log_message=f"{self._where} submission failed: {e}", reason="centre-unreachable", status_code=503,
            ) from None
        except SchedulerError as e:
            raise user_error(f"{name} refused the job: {e}", reason="job-refused") from None
        self.emit(f"Submitted to {name} as job {self.job_id}", 20)
        if self.watcher is not None:
            self.watcher.track(self.job_id)

        info = await self._wait_until_running()
        self.ip = await self.client.node_address(info.node, self.req_username) if info.node else "127.0.0.1"
        self.emit(f"Job {self.job_id} running at {name} on node {info.node}; "
                  "waiting for the notebook server to start", 60)
        await self._wait_for_port()
        await self._wait_for_listening()
        self.emit(f"Notebook server on {info.node} is listening on port {self.port}", 90)
        self.log.info("%s job %s serving at %s:%s", self._where, self.job_id, self.ip, self.port)
        return self.ip, self.port

    async def _submit(self):
        await self.submit_batch_script()

    async def _wait_until_running(self) -> JobInfo:
        last_message = None
        submitted = time.monotonic()
        while True:
            snapshot = await self._fresh_snapshot()
            if not snapshot.answered:
                if self.may_move_on and not snapshot.up:
                    raise MoveOn("down", f"{self.centre.name} stopped answering while job {self.job_id} waited")
                message = f"{self.centre.name}'s scheduler is not answering; still waiting"
                self.log.warning("%s %s (%s)", self._where, message, snapshot.error)
                if message != last_message:
                    self.emit(message)
                    last_message = message
                await asyncio.sleep(self.startup_poll_interval)
                continue
            info = snapshot.jobs.get(self.job_id)
            if info is None or info.is_finished:
                self._raise_ended(info)
            if info.is_running:
                return info
            if info.held_by_allocation:
                message = (f"Slurm will not start job {self.job_id} at {self.centre.name}: the allocation's "
                           f"limit is reached ({info.reason}). Choose another centre, or ask the centre "
                           "for more allocation.")
                if self.may_move_on:
                    raise MoveOn("allocation", message.rstrip("."))
                raise user_error(message, reason="allocation-used-up", status_code=403)
            waited = time.monotonic() - submitted
            if self.pending_timeout and waited > self.pending_timeout:
                raise MoveOn("pending", f"job {self.job_id} still pending at {self.centre.name} after "
                                        f"{waited:.0f} s ({info.reason or 'no reason given'})")
            message = pending_message(self.centre.name, info)
            if message != last_message:
                self.emit(message, 30)
                last_message = message
            if self.watcher is None:
                await asyncio.sleep(self.startup_poll_interval)

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
        seconds. A cheap TCP probe every ``listen_probe_interval`` avoids that.
        """
        checks = 0
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(self.ip, self.port), 1)
                writer.close()
                return
            except (OSError, asyncio.TimeoutError):
                pass
            checks += 1
            if checks % 50 == 0:  # every ~5 s
                await self._raise_if_job_ended()
            await asyncio.sleep(self.listen_probe_interval)

    async def _raise_if_job_ended(self):
        """While waiting on the server: stop waiting if Slurm says the job is over."""
        snapshot = await self._fresh_snapshot()
        if snapshot.job_gone(self.job_id):
            self._raise_ended(snapshot.jobs.get(self.job_id))

    def _raise_ended(self, info: JobInfo | None):
        state = f"state {info.state}" + (f", reason {info.reason}" if info and info.reason else "") if info else "no longer known to Slurm"
        job = self.job_id
        self.job_id = ""  # nothing left to cancel
        if self.watcher is not None:
            self.watcher.untrack(job)
        raise JobEnded(
            f"Job {job} at {self.centre.name} ended before the notebook server started ({state}). "
            f"Its output is in {self.job_output.replace('%j', job)} in your home directory there."
        )

    async def poll(self):
        """None while Slurm says the job is alive or cannot be asked; 1 once Slurm says it is gone.

        With a watcher this costs no scheduler query: it reads the centre's latest snapshot."""
        if not self.job_id:
            return 0
        if self.watcher is not None:
            self.watcher.track(self.job_id)
            self.watcher.ensure_running()
            snapshot = self.watcher.latest
            if snapshot is None or not snapshot.knows(self.job_id):
                if snapshot is not None and not snapshot.answered:
                    self.log.warning("%s centre not answering (%s); keeping the server", self._where, snapshot.error)
                return None
            if not snapshot.job_gone(self.job_id):
                return None
            info = snapshot.jobs.get(self.job_id)
        else:
            try:
                info = await self.client.job(self.job_id, self.req_username)
            except SchedulerUnreachable as e:
                self.log.warning("%s scheduler did not answer a poll for job %s (%s); keeping the server",
                                 self._where, self.job_id, e)
                return None
            if info is not None and not info.is_finished:
                return None
        self.log.info("%s job %s is gone (%s)", self._where, self.job_id,
                      info.state if info else "no longer in squeue")
        if self.watcher is not None:
            self.watcher.untrack(self.job_id)
        return 1

    async def stop(self, now=False):
        """Cancel the job (waiting for a submission still in flight) and confirm it ended."""
        if self._submit_task is not None and not self._submit_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._submit_task), self.scheduler_timeout)
            except Exception:
                pass
        if not self.job_id:
            return
        job = self.job_id
        self.log.info("%s cancelling job %s", self._where, job)
        try:
            await self.cancel_batch_job()
        except SchedulerUnreachable as e:
            self.log.error("%s could not cancel job %s: %s. FedHub will retry the scancel until "
                           "the centre answers.", self._where, job, e)
            if self.cancel_backlog is not None:
                self.cancel_backlog.add(self.centre.id, job, self.req_username)
            return
        if now:
            return
        deadline = time.monotonic() + self.stop_confirm_timeout
        while time.monotonic() < deadline:
            snapshot = await self._fresh_snapshot()
            if snapshot.job_gone(job):
                if self.watcher is not None:
                    self.watcher.untrack(job)
                return
            if self.watcher is None:
                await asyncio.sleep(0.5)
        self.log.warning("%s job %s did not end within %s s of scancel", self._where, job,
                         self.stop_confirm_timeout)

    async def progress(self):
        async for event in self.progress_log.follow():
            yield event


def pending_message(centre_name: str, info: JobInfo, now: datetime | None = None) -> str:
    """'Pending at Alpha as job 12: waiting for Resources; Slurm estimates it starts at 16:05 (in 4 min)'."""
    text = f"Pending at {centre_name} as job {info.job_id}"
    if info.reason:
        text += f": waiting for {info.reason}"
    if info.start_time is not None:
        now = now or datetime.now()
        minutes = max(0, round((info.start_time - now).total_seconds() / 60))
        when = "now" if minutes == 0 else f"in {minutes} min"
        text += f"; Slurm estimates it starts at {info.start_time:%H:%M} ({when})"
    return text
