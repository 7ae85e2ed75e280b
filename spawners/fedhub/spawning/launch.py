"""Running one notebook server's job at one centre, from sbatch to a server that answers: the
submission (its secrets through a private file), the wait through Slurm's states with their
reasons on the progress page, the port the server reports, the tunnel through a firewalled
centre's login node, and the first TLS answer. ``MoveOn`` tells the failover to try the next
centre; ``JobEnded`` says the job ended before its server came up."""

from __future__ import annotations

import asyncio
import ssl
import time

from .. import runtime
from ..errors import user_error
from ..i18n import _
from ..federation import Centre
from ..jobs import tls
from ..jobs.kernel import kernel_centres
from ..jobs.progress import pending_message
from ..jobs.server import (JobHookError, JobSubmission, apply_job_hook, batch_script, job_environment, job_log,
                           job_spec, nodes_api_url)
from ..metrics import SPAWNS
from ..request import SpawnRequest
from ..slurm.commands import JobInfo, SchedulerError, SchedulerUnreachable
from ..slurm.job import SubmissionUncertain
from ..slurm.routes import LoginRefused
from ..slurm.tunnels import CentreTunnel, ForwardError


class JobEnded(RuntimeError):
    """The job ended before its notebook server came up."""


class MoveOn(RuntimeError):
    """Give up on this centre and let placement try the next one (``reason`` for metrics)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class ServerLaunch:
    """One spawner's server job: started, followed, reached and cancelled (the spawner keeps the
    job, its request and its tunnel as its state)."""

    def __init__(self, spawner):
        self.spawner = spawner

    async def start_at(self, request: SpawnRequest, *, move_on: bool = False):
        """Start the server at ``request.centre`` (a concrete centre and partition)."""
        spawner = self.spawner
        spawner.request = request
        centre = spawner.federation.centre(request.centre)
        spawner.job = spawner._job_at(centre, request.login)
        spawner.port = 0
        spawner._port_reported.clear()
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
            await tunnel.ensure_return_path(self.spawner.hub.api_url)
        except ForwardError as e:
            raise user_error(_("{problem}. Nothing was submitted.").format(problem=e), reason="tunnel", status_code=503) from None
        return tunnel

    async def _run_server_job(self, centre: Centre, request: SpawnRequest, move_on: bool):
        spawner = self.spawner
        name = centre.name
        spawner.progress_log.emit(_("Submitting to {centre}: {request}").format(centre=name, request=request.describe()), 10)
        tunnel = None
        # a tunnel centre's node is on a private network reached only through the login node's forward
        spawner.ip = "0.0.0.0" if centre.network.tunnel else spawner.listen_ip
        if centre.network.tunnel:
            tunnel = await self._return_path(centre)
        nodes_api = nodes_api_url(centre, spawner.hub.api_url)
        # the quota service, reached through the hub's API (TLS; the hub passes it on over loopback)
        quota_url = f"{nodes_api or spawner.hub.api_url.rstrip('/')}/fedhub/quota/" if spawner.quota_service_url else ""
        kernels = kernel_centres(spawner.federation, spawner.user.name, request)
        args = [*spawner.get_args(), f"--HubOAuth.cache_max_age={spawner.access_recheck_interval}"]
        script = batch_script(spawner.batch_script, centre, request.login, args, quota_url,
                              spawner.job_output_dir, spawner.job_logs_kept, kernels,
                              tls_lines=tls.script_lines() if spawner.internal_ssl else "",
                              kernel_idle_timeout_s=centre.idle_timeouts(request.partition)[1])
        env = job_environment(spawner.get_env(), spawner.hub.api_url, nodes_api)
        if spawner.internal_ssl:
            env.update(tls.secret_env(spawner._tls_pems))
        spec = job_spec(centre, request, spawner.user.name, spawner.job_output_dir)
        try:
            submission = await apply_job_hook(spawner.modify_job_hook, self.spawner,
                                               JobSubmission(spec, script, env, centre))
        except JobHookError as e:
            spawner.log.error("%s %s", spawner._where, e)
            raise user_error(_("This hub's job settings are broken, nothing was submitted ({problem}). Tell the "
                               "hub's operators.").format(problem=e), reason="job-hook", status_code=500) from None
        spawner.log.info("%s submitting to %s via %s: %s", spawner._where, name,
                              spawner.job.client.route.describe(), request.describe())
        # Shielded: if the hub gives up on this start while sbatch runs, the job id is still
        # recorded, so stop() can cancel the job instead of leaving it behind.
        spawner._submitting = asyncio.ensure_future(
            spawner.job.submit(submission.spec, submission.script, submission.env,
                                    spawner.job_output_dir))
        # the next student's placement sees this job as soon as sbatch answered
        spawner._submitting.add_done_callback(lambda _: spawner.failover.end_turn())
        try:
            await asyncio.shield(spawner._submitting)
        except SubmissionUncertain as e:
            raise user_error(
                _("{centre} did not confirm the submission in time. If it accepted the job, FedHub will find it "
                  "and cancel it. Try again later or choose another centre.").format(centre=name),
                log_message=f"{spawner._where} submission unconfirmed: {e}", reason="centre-unreachable",
                status_code=503) from None
        except SchedulerUnreachable as e:
            raise user_error(
                _("{centre} is not answering, nothing was submitted. Try again later or choose another "
                  "centre.").format(centre=name),
                log_message=f"{spawner._where} submission failed: {e}", reason="centre-unreachable", status_code=503,
            ) from None
        except LoginRefused as e:
            raise user_error(_("{centre} refused your login {login!r}: {problem}. Ask the centre to enable it, "
                               "or choose another centre.").format(centre=name, login=request.login, problem=e),
                             reason="login-refused", status_code=403) from None
        except SchedulerError as e:
            raise user_error(_("{centre} refused the job: {problem}").format(centre=name, problem=e),
                             reason="job-refused") from None
        spawner.log.info("%s submitted job %s", spawner._where, spawner.job.job_id)
        spawner.progress_log.emit(_("Submitted to {centre} as job {job}").format(centre=name, job=spawner.job.job_id), 20)
        spawner.workspace.begin_staging(centre, request.login)  # while the job waits in the queue
        try:
            return await self._serve(name, tunnel, move_on)
        except BaseException:
            spawner.workspace.cancel_staging()
            raise

    async def _serve(self, name: str, tunnel, move_on: bool):
        """From a submitted job to a server that answers, with the workspace staged."""
        spawner = self.spawner
        info = await self._wait_until_running(move_on)
        spawner.ip = await spawner.job.client.node_address(info.node) if info.node else "127.0.0.1"
        spawner.progress_log.emit(_("Job {job} running at {centre} on node {node}; waiting for the notebook "
                                    "server to start").format(job=spawner.job.job_id, centre=name, node=info.node), 60)
        await self._wait_for_port()
        if tunnel is not None:
            await self._open_tunnel(tunnel, spawner.ip, spawner.port)
        await self._wait_for_listening()
        spawner.progress_log.emit(_("Notebook server on {node} is listening on port {port}").format(
            node=info.node, port=spawner.tunnel["port"] if spawner.tunnel else spawner.port), 90)
        await spawner.workspace.finish_staging()
        spawner.log.info("%s job %s serving at %s:%s", spawner._where, spawner.job.job_id, spawner.ip, spawner.port)
        return spawner.ip, spawner.port

    async def _wait_until_running(self, may_move_on: bool) -> JobInfo:
        spawner = self.spawner
        job, name = spawner.job, spawner.job.centre.name
        last_message = None
        submitted = time.monotonic()
        while True:
            seen = await job.observe()
            if not seen.answered:
                if may_move_on and not seen.centre_up:
                    raise MoveOn("down", f"{name} stopped answering while job {job.job_id} waited")
                message = _("{centre}'s scheduler is not answering; still waiting").format(centre=name)
                spawner.log.warning("%s %s (%s)", spawner._where, message, seen.error)
                if message != last_message:
                    spawner.progress_log.emit(message)
                    last_message = message
                await asyncio.sleep(spawner.startup_poll_interval)
                continue
            if seen.gone:
                self._raise_ended(seen.info)
            info = seen.info
            if info.is_running:
                return info
            if info.held_by_allocation:
                message = _("Slurm will not start job {job} at {centre}: the allocation's limit is reached "
                            "({reason}). Choose another centre, or ask the centre for more allocation.").format(
                    job=job.job_id, centre=name, reason=info.reason)
                if may_move_on:
                    raise MoveOn("allocation", message.rstrip("."))
                raise user_error(message, reason="allocation-used-up", status_code=403)
            waited = time.monotonic() - submitted
            patience = spawner.class_failover_pending_timeout if spawner.request and spawner.request.klass \
                else spawner.failover_pending_timeout
            if may_move_on and waited > patience:
                raise MoveOn("pending", f"job {job.job_id} still pending at {name} after {waited:.0f} s "
                                        f"({info.reason or 'no reason given'})")
            message = pending_message(name, info)
            if message != last_message:
                spawner.progress_log.emit(message, 30)
                last_message = message

    async def _open_tunnel(self, tunnel: CentreTunnel, node: str, port: int, local_port: int | None = None) -> None:
        """Forward a hub-side port through the login node to the server; the proxy routes there."""
        spawner = self.spawner
        try:
            local_port = await tunnel.open_server(node, port, local_port)
        except ForwardError as e:
            raise user_error(f"{e}. The hub cannot reach the server at {tunnel.centre.name}.", reason="tunnel",
                             status_code=503) from None
        spawner.tunnel = {"node": node, "port": port, "local_port": local_port}
        spawner._tunnel_open = True
        spawner.ip, spawner.port = "127.0.0.1", local_port
        spawner.log.info("%s forwarding 127.0.0.1:%s to %s:%s through %s's login node", spawner._where, local_port,
                      node, port, tunnel.centre.id)

    async def reopen_tunnel(self) -> None:
        """After a hub restart: the return path and this server's forward, on the same local port
        (JupyterHub's route points there)."""
        spawner = self.spawner
        if spawner.tunnel is None or spawner._tunnel_open or spawner.job is None:
            return
        tunnel = await self._return_path(spawner.job.centre)
        await self._open_tunnel(tunnel, spawner.tunnel["node"], spawner.tunnel["port"], spawner.tunnel["local_port"])

    async def close_tunnel(self) -> None:
        spawner = self.spawner
        if spawner.tunnel is not None and spawner.job is not None:
            await CentreTunnel(spawner.job.centre).close_server(spawner.tunnel["node"], spawner.tunnel["port"],
                                                             spawner.tunnel["local_port"])
        spawner.tunnel, spawner._tunnel_open = None, False

    def report_port(self, port: int) -> None:
        spawner = self.spawner
        spawner.port = port
        spawner._port_reported.set()

    async def _wait_for_port(self):
        spawner = self.spawner
        checks = 0
        while spawner.port == 0:
            try:
                await asyncio.wait_for(spawner._port_reported.wait(), spawner.startup_poll_interval)
            except asyncio.TimeoutError:
                pass
            checks += 1
            if spawner.port == 0 and checks % 10 == 0:  # every ~5 s
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
            await asyncio.sleep(self.spawner.listen_probe_interval)

    async def _answers_http(self) -> bool:
        """Whether something answers HTTP at (ip, port). A bare TCP connect is not enough: through
        a tunnel the hub's ssh accepts the connection even while nothing listens at the node. With
        internal SSL the server must also complete a TLS handshake with a certificate of the hub's CA."""
        spawner = self.spawner
        writer = None
        context = self.client_ssl_context()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                spawner.ip, spawner.port, ssl=context, server_hostname=spawner.ip if context else None), 3)
            writer.write(b"HEAD / HTTP/1.0\r\n\r\n")
            return bool(await asyncio.wait_for(reader.read(1), 2))
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            if writer is not None:
                writer.close()

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """The hub's client context for the probe, made once per process: it trusts only the hub's
        internal CA (a server must show a certificate of it) and shows the hub's own. (Made for
        every probe, as JupyterHub's make_ssl_context does with the system's CA bundle, it cost the
        event loop 0.6 s of CPU per spawn: the spawn path's largest item in a py-spy profile.)"""
        spawner = self.spawner
        if not spawner.internal_ssl:
            return None
        app = spawner.user.settings
        files = (app["internal_ssl_key"], app["internal_ssl_cert"], app["internal_ssl_ca"])
        contexts = runtime.current().tls_contexts
        if files not in contexts:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files[2])
            context.load_cert_chain(files[1], files[0])
            contexts[files] = context
        return contexts[files]

    async def _raise_if_job_ended(self):
        seen = await self.spawner.job.observe()
        if seen.gone:
            self._raise_ended(seen.info)

    def _raise_ended(self, info: JobInfo | None):
        spawner = self.spawner
        job = spawner.job
        state = (f"state {info.state}" + (f", reason {info.reason}" if info.reason else "")) if info \
            else "no longer known to Slurm"
        job_id = job.job_id
        job.job_id = ""  # nothing left to cancel
        raise JobEnded(f"Job {job_id} at {job.centre.name} ended before the notebook server started ({state}). "
                       f"Its output is in {job_log(spawner.job_output_dir, job_id)} there.")

    async def cancel_job(self, now: bool = False) -> None:
        spawner = self.spawner
        if spawner._submitting is not None and not spawner._submitting.done():
            try:
                await asyncio.wait_for(asyncio.shield(spawner._submitting), spawner.scheduler_timeout)
            except Exception:
                pass
        if spawner.job is None or not spawner.job.job_id:
            return
        job_id = spawner.job.job_id
        spawner.log.info("%s cancelling job %s", spawner._where, job_id)
        outcome = await spawner.job.cancel(0 if now else spawner.stop_confirm_timeout)
        if outcome == "owed":
            spawner.log.error("%s could not cancel job %s: %s is not answering. FedHub retries the scancel until "
                           "it does (state dir %s).", spawner._where, job_id, spawner.job.centre.name, spawner.state_dir)
        elif outcome == "unconfirmed" and not now:
            spawner.log.warning("%s job %s did not end within %s s of scancel", spawner._where, job_id,
                             spawner.stop_confirm_timeout)
