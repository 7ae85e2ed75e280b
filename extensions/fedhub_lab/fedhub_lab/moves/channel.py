"""The mover's own line to a kernel: its shell channel only.

Shell replies go to the client that asked, so the snapshot's bytes reach only the notebook server
(never IOPub, which every client of the kernel receives). The source answers in user expressions;
the target takes the pieces as comm messages with binary buffers. Both travel the same channels
as every kernel message: HMAC-signed, through the hub's relay for a kernel at a centre.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from jupyter_client.session import Session

from ..provisioner.provisioner import hub_status

AGENT = "__import__('fedhub_lab.agent.moves', fromlist=['agent'])"
LIVENESS_CHECK_S = 2.0  # while waiting for an answer, how often to ask whether the kernel lives


class ChannelError(RuntimeError):
    """The kernel did not answer, or answered with an error (the message says which)."""


class KernelChannel:
    def __init__(self, kernel_manager, label: str, watch: bool = True):
        # its own session: a shell socket's identity is the session's id, and a second socket with
        # the manager's identity would take the replies meant for the lab's connection
        session = Session(key=kernel_manager.session.key, signature_scheme=kernel_manager.session.signature_scheme,
                          username=kernel_manager.session.username)
        self.client = kernel_manager.client(session=session)
        self.manager = kernel_manager
        self.watch = watch  # ask the manager whether the kernel lives (not for a bare connection file)
        self.label = label
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self.comm_id = ""
        self._replies: dict[str, dict] = {}  # answers that came while another was awaited

    def close(self) -> None:
        self.client.stop_channels()

    async def call(self, expression: str, timeout: float = 600.0) -> str:
        """Evaluate ``expression`` in the kernel, silently; its text/plain value."""
        return await self.value(self.ask(expression), timeout)

    def ask(self, expression: str) -> str:
        """Send the request now (the kernel answers in order); ``value`` waits for its answer.
        Asking for the next piece before reading this one keeps both ends busy."""
        return self.client.execute("", silent=True, store_history=False, user_expressions={"v": expression})

    async def value(self, msg_id: str, timeout: float = 600.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while msg_id not in self._replies:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ChannelError(f"the kernel {self.label} did not answer within {timeout:.0f} s")
            try:
                reply = await self.client.get_shell_msg(timeout=min(remaining, LIVENESS_CHECK_S))
            except Exception:  # queue.Empty (no answer yet) or a closed channel
                await self.ensure_alive()
                continue
            self._replies[reply.get("parent_header", {}).get("msg_id", "")] = reply
        reply = self._replies.pop(msg_id)
        content = reply["content"]
        if content.get("status") != "ok":
            raise ChannelError(f"the kernel {self.label} refused: {content.get('ename')}: {content.get('evalue')}")
        value = content["user_expressions"]["v"]
        if value.get("status") != "ok":
            raise ChannelError(f"{self.label}: {value.get('ename')}: {value.get('evalue')}")
        return value["data"]["text/plain"]

    async def ensure_alive(self) -> None:
        """A kernel that died (its job cancelled, ended by its walltime) will never answer: say so
        now, with the hub's words for a kernel at a centre, rather than wait out the timeout."""
        if self.watch and (not self.manager.has_kernel or not await self.manager.is_alive()):
            said = hub_status(self.manager.kernel_id).get("message", "")
            raise ChannelError(f"the kernel {self.label} ended" + (f" ({said})" if said else ""))

    async def call_json(self, expression: str, timeout: float = 600.0) -> dict:
        return json.loads(await self.call(expression, timeout))

    def agent(self, function: str, *args) -> str:
        """The expression that calls the kernel-side agent's ``function`` with ``args`` (as literals)."""
        return f"{AGENT}.{function}({', '.join(repr(a) for a in args)})"

    def open_comm(self, target_name: str) -> None:
        self.comm_id = uuid.uuid4().hex
        self._send("comm_open", {"comm_id": self.comm_id, "target_name": target_name, "data": {}})

    def send_piece(self, index: int, sha256: str, data: bytes) -> None:
        self._send("comm_msg", {"comm_id": self.comm_id, "data": {"chunk": index, "sha256": sha256}}, [data])

    def close_comm(self) -> None:
        if self.comm_id:
            self._send("comm_close", {"comm_id": self.comm_id, "data": {}})
            self.comm_id = ""

    def _send(self, msg_type: str, content: dict, buffers: list | None = None) -> None:
        self.client.session.send(self.client.shell_channel.socket, msg_type, content, buffers=buffers)
