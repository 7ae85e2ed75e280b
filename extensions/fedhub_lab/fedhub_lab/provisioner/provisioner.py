"""A jupyter_client kernel provisioner whose kernel is a Slurm job at a FedHub centre.

The notebook server never talks to a centre: it asks the hub (``hub.HubKernels``) to submit,
follow, restart and end the kernel's job, and the hub answers with where to connect (its relay
of the kernel's ports). Nothing here blocks the server's event loop.

- the kernel's channels are CurveZMQ: this server makes the pair, the hub hands it to the
  launcher over TLS, and every relay between the kernel's node and here carries ciphertext that
  only the holder of the pair can open (another user's SUB socket on a relay port gets nothing);
- ``launch_kernel`` returns once the kernel listens; the server's log follows the wait in
  Slurm's words ("Pending at Beta as job 200031: waiting for Resources ...").
- interrupts are messages (the kernelspec says ``interrupt_mode: message``): the job lives on;
- ``poll`` asks the hub, whose monitor already follows the job: a job that Slurm ended shows
  as a dead kernel, with Slurm's reason in the log;
- a restart keeps the job: the kernel process exits and the launcher in the job starts it again
  on the same ports; shutdown ends the job.

Registered as ``fedhub-slurm`` under ``jupyter_client.kernel_provisioners``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import zmq
from jupyter_client.provisioning import KernelProvisionerBase
from traitlets import Dict, Float

from .. import runtime
from .hub_client import HubKernelError, HubKernels

def jupyter_kernel_ids() -> dict[str, str]:
    """The hub's kernel id -> this server's kernel id, for the kernels started here."""
    return {p.fedhub_id: kernel_id for kernel_id, p in list(runtime.current().provisioners.items()) if p.fedhub_id}


def hub_status(kernel_id: str) -> dict:
    """The hub's latest word on a FedHub kernel of this server, also while it starts (a move
    shows it: "Pending at Gamma as job 300012: waiting for Resources ...")."""
    provisioner = runtime.current().provisioners.get(kernel_id)
    return dict(provisioner.status) if provisioner is not None else {}


class FedHubProvisioner(KernelProvisionerBase):
    # the kernelspec's kernel_provisioner.config: where and with what
    request = Dict(help="The kernel's user options ({centre, partition, cores, ...}), as the spawn form's: "
                        "the hub checks them against fedhub.request.OPTION_FIELDS, the one list of them.")

    start_timeout = Float(24 * 3600.0, config=True,
                          help="Seconds a kernel may wait in a centre's queue before the start gives up "
                               "(its job is cancelled then).")
    status_interval = Float(1.0, config=True, help="Seconds before asking the hub again after it did not answer.")
    status_wait = Float(10.0, config=True, help="Seconds the hub may hold a question about a starting kernel "
                        "(it answers at once when the kernel's status changes).")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.hub = HubKernels()
        self.fedhub_id: str | None = None
        self.status: dict = {}
        self._restarting = False
        self._ended = False
        self._asked_to_restart = False  # by the user (a shutdown request with restart), not the restarter
        self._curve: tuple[bytes, bytes] | None = None  # (public, secret): the kernel's, kept across restarts
        if self.kernel_id:
            runtime.current().provisioners[self.kernel_id] = self

    # ------------------------------------------------------------------ state

    @property
    def has_process(self) -> bool:
        return self.fedhub_id is not None and not self._ended

    async def get_provisioner_info(self) -> dict:
        info = await super().get_provisioner_info()
        info.update(fedhub_id=self.fedhub_id, status=self.status)
        return info

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.fedhub_id = provisioner_info.get("fedhub_id")
        self.status = provisioner_info.get("status") or {}

    # ------------------------------------------------------------------ launch

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        if not self.hub.available:
            raise RuntimeError("FedHub kernels need a notebook server started by FedHub (no JupyterHub API here)")
        kwargs = await super().pre_launch(**kwargs)
        kwargs["cmd"] = ["fedhub-kernel-job"]  # nothing runs here; the job's launcher starts the kernel
        return kwargs

    def options(self) -> dict:
        """The kernel's request as the spawn form would send it (empty values left to the hub)."""
        return {k: v for k, v in self.request.items() if v not in (None, "", 0)}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict:
        key = self.parent.session.key.decode()
        asked, self._asked_to_restart = self._asked_to_restart, False
        if self.fedhub_id and self._ended and not asked:
            # The job ended from outside (scancel, walltime, node failure): jupyter_client's restarter
            # must not quietly queue a new job; the kernel shows as dead, with Slurm's reason.
            raise RuntimeError(f"FedHub kernel ended: {self.status.get('message') or 'its job ended'}")
        if self.fedhub_id and not self._ended:
            # a restart (asked for, or jupyter_client's restarter after the kernel process exited):
            # the same job, whose launcher starts a new kernel on the same ports
            self.status = await self.hub.restart(self.fedhub_id)
        else:
            # CurveZMQ always, unless the hub runs without internal SSL (it then says so in the job)
            encrypted = os.environ.get("FEDHUB_KERNEL_ENCRYPTION", "") != "off"
            self._curve = zmq.curve_keypair() if encrypted else None
            try:
                self.status = await self.hub.start(self.options(), key,
                                                   self._curve[1].decode() if self._curve else None)
            except HubKernelError as e:
                raise RuntimeError(f"FedHub could not start the kernel: {e}") from None
            self.fedhub_id, self._ended = self.status["id"], False
            self.log.info("FedHub kernel %s: %s", self.fedhub_id, self.status.get("message"))
        self._restarting = False
        return await self._wait_until_ready(key)

    async def _wait_until_ready(self, key: str) -> dict:
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        said = self.status.get("message")  # already logged at the start
        try:
            known = self.status.get("status", "")
            while True:
                try:  # the hub answers when the status changes, or after status_wait s
                    self.status = await self.hub.status(self.fedhub_id, known, self.status_wait)
                except HubKernelError as e:
                    if e.gone:  # the wait was cancelled (the lab's "Cancel wait"), or the server stops
                        self._ended = True
                        raise RuntimeError(f"the kernel's start was cancelled ({e})") from None
                    self.log.warning("FedHub kernel %s: %s", self.fedhub_id, e)
                    self.status = {"status": "unknown", "message": str(e)}
                    await asyncio.sleep(self.status_interval)
                state, message = self.status.get("status"), self.status.get("message", "")
                known = state if state != "unknown" else ""
                if message != said:
                    self.log.info("FedHub kernel %s: %s", self.fedhub_id, message)
                    said = message
                if state == "ready":
                    connection = self.status["connection"]
                    # as strings: jupyter_client compares this with its own view, which holds them decoded
                    curve = ({"curve_publickey": self._curve[0].decode(), "curve_secretkey": self._curve[1].decode()}
                             if self._curve else {})
                    return {**connection, "key": key.encode(), "transport": "tcp",
                            "signature_scheme": "hmac-sha256", **curve}
                if state == "ended":
                    self._ended = True
                    raise RuntimeError(message or "the kernel's job ended before the kernel started")
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"the kernel did not start within {self.start_timeout:.0f} s ({message})")
        except BaseException:
            if not self._ended:  # a start given up (cancelled, timed out): its job goes too
                await self._end()
            raise

    # ------------------------------------------------------------------ follow

    async def poll(self) -> int | None:
        if self.fedhub_id is None or self._ended:
            return 1 if self._ended else 0
        if self._restarting:
            return 0  # the kernel process was asked to exit for a restart; the job stays
        try:
            self.status = await self.hub.status(self.fedhub_id)
        except HubKernelError as e:
            if e.gone:
                self._ended = True
                return 1
            return None  # the hub not answering is no reason to call the kernel dead
        state = self.status.get("status")
        if state == "ended":
            self._ended = True
            self.log.warning("FedHub kernel %s: %s", self.fedhub_id, self.status.get("message"))
            return 1
        if state == "exited":
            return self.status.get("exit_code") or 0
        return None

    async def wait(self) -> int | None:
        while True:
            code = await self.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ end

    async def shutdown_requested(self, restart: bool = False) -> None:
        self._asked_to_restart = restart
        if restart and self.fedhub_id and not self._ended:
            self._restarting = True
            try:
                await self.hub.restart(self.fedhub_id)
            except HubKernelError as e:
                self.log.warning("FedHub kernel %s: restart not taken: %s", self.fedhub_id, e)

    async def send_signal(self, signum: int) -> None:
        if signum == signal.SIGKILL:
            await self.kill()
        elif signum:
            # A signal cannot cross sites; interrupts travel as messages (interrupt_mode: message).
            self.log.debug("FedHub kernel %s: signal %s not sent (remote kernel)", self.fedhub_id, signum)

    async def kill(self, restart: bool = False) -> None:
        if not restart:
            await self._end()

    async def terminate(self, restart: bool = False) -> None:
        if not restart:
            await self._end()

    async def cleanup(self, restart: bool = False) -> None:
        if not restart:
            await self._end()

    async def _end(self) -> None:
        if self.fedhub_id is None or self._ended:
            return
        # Never raises: jupyter_server stops its event loop only after every kernel's shutdown
        # returned, so an error here would leave the server running with nothing listening.
        try:
            await self.hub.shutdown(self.fedhub_id)
        except HubKernelError as e:
            if not e.gone:
                self.log.error("FedHub kernel %s: the hub did not end it: %s", self.fedhub_id, e)
                return
        except Exception:
            self.log.exception("FedHub kernel %s: ending it failed", self.fedhub_id)
            return
        self._ended = True

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return max(recommended, 10.0)  # a message round trip through the relay, then the job's end

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        return recommended
