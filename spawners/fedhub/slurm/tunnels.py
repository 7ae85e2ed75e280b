"""Reaching a centre whose compute nodes sit behind its login node (``network: mode: tunnel``).

Every forward rides the hub's one connection to the login node (the query login's ssh master,
``sshmux``), which re-establishes it and restores the forwards when it drops:

- the return path, once per centre: the login node forwards ``login_node_address:hub_api_port``
  to the hub's API, bound to the login node's inner address only, so jobs report their port,
  activity, OAuth and quota questions there. Another user of the login node could bind that port
  while the hub's connection is down; the jobs then find no certificate of the hub's CA there
  (internal SSL) and send nothing. ``public_port`` is no longer forwarded: nothing of a job's
  goes to the hub's public URL;
- one forward per server: a port on the hub's loopback to the server's node and port, which
  the proxy routes ``/user/<name>/`` to.
"""

from __future__ import annotations

import random
import socket
from urllib.parse import urlparse

from ..federation import Centre
from .sshmux import ForwardError, SshMasters

__all__ = ["CentreTunnel", "ForwardError"]


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return host, parsed.port or (443 if parsed.scheme == "https" else 80)


# Below Linux's ephemeral range (32768-60999 by default): a port taken from that range can be
# given to some outgoing connection before its listener binds it ("Address already in use").
_LISTEN_PORTS = range(20000, 32768)


def free_local_port() -> int:
    """A free port on the hub's loopback (the demo and the tests use it too), outside the range
    the kernel hands to outgoing connections."""
    for _ in range(200):
        port = random.choice(_LISTEN_PORTS)
        try:
            for host in ("0.0.0.0", "127.0.0.1"):
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    with socket.socket() as s:  # a crowded range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CentreTunnel:
    def __init__(self, centre: Centre):
        self.centre = centre
        self.network = centre.network
        self.master = SshMasters.get(centre.scheduler, centre.scheduler.query_user)

    async def ensure_return_path(self, hub_api_url: str) -> None:
        """The login node's forward back to the hub's API (idempotent). ForwardError names the fix."""
        address = self.network.login_node_address
        for port, url in ((self.network.hub_api_port, hub_api_url),):
            host, target = _host_port(url)
            spec = f"{address}:{port}:{host}:{target}"
            if ("R", spec) in self.master.forwards and ("R", spec) not in self.master.refused and self.master.alive:
                continue  # held (the master restores it after a drop)
            try:
                await self.master.add_forward("R", spec)
            except ForwardError as e:
                if "pinned host key" in str(e) or "cannot be reached" in str(e):
                    raise ForwardError(f"{self.centre.name}'s login node: {e}") from None
                raise ForwardError(
                    f"{self.centre.name}'s login node did not open {address}:{port} back to the hub ({e}). "
                    f"Check that its sshd allows forwarding (AllowTcpForwarding yes, GatewayPorts "
                    f"clientspecified) and that the port is free, or change network.hub_api_port "
                    f"for centre {self.centre.id}") from None

    async def open_server(self, node: str, port: int, local_port: int | None = None) -> int:
        """Forward a port on the hub's loopback to ``node:port``; return it."""
        local_port = local_port or free_local_port()
        await self.master.add_forward("L", f"127.0.0.1:{local_port}:{node}:{port}")
        return local_port

    async def close_server(self, node: str, port: int, local_port: int) -> None:
        await self.master.cancel_forward("L", f"127.0.0.1:{local_port}:{node}:{port}")
