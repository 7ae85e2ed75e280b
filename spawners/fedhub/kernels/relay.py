"""The path a kernel's five ZeroMQ ports travel from the kernel's node to the notebook server.

Only the hub's own connections carry it (``slurm.sshmux``), nothing is opened to the world:

- kernel at a tunnel centre: the hub forwards a port on its loopback (or the internal address
  the server's centre reaches it by) through that centre's login node to each kernel port;
- kernel at a direct centre: its node's ports are reachable where the hub is;
- server at a tunnel centre: the server's login node forwards a port on its inner address back
  to each of the above, so the server connects to its own login node.

A relay is a list of forwards on named centres' masters, kept in the server's state and
restored after a hub restart; a dropped connection is restored by the master itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ..federation import Centre, Federation
from ..slurm.sshmux import ForwardError, SshMasters
from ..slurm.tunnels import free_local_port

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
_LOGIN_NODE_PORTS = (20000, 60999)  # where a return forward for a kernel port is tried


@dataclass
class Relay:
    ip: str  # where the notebook server connects
    ports: dict[str, int]  # PORT_NAMES -> port there
    forwards: list[dict] = field(default_factory=list)  # {"centre", "kind", "spec", "port"}

    def to_state(self) -> dict:
        return {"ip": self.ip, "ports": dict(self.ports), "forwards": [dict(f) for f in self.forwards]}

    @classmethod
    def from_state(cls, state: dict) -> "Relay":
        return cls(state["ip"], dict(state["ports"]), [dict(f) for f in state.get("forwards", [])])


def _master(centre: Centre):
    return SshMasters.get(centre.scheduler, centre.scheduler.query_user)


def _hub_bind_host(server_centre: Centre) -> str:
    """Where a hub-side port must listen for the server's node to reach it."""
    if server_centre.network.tunnel or not server_centre.hub_connect_url:
        return "127.0.0.1"
    return urlparse(server_centre.hub_connect_url).hostname or "127.0.0.1"


async def open_relay(kernel_centre: Centre, node_address: str, node_ports: dict[str, int],
                     server_centre: Centre) -> Relay:
    """Forwards from the server's side to each kernel port; ForwardError (all undone) if one fails."""
    relay = Relay(node_address, dict(node_ports))
    try:
        if kernel_centre.network.tunnel:
            host = _hub_bind_host(server_centre)
            master, ports = _master(kernel_centre), {}
            for name, port in node_ports.items():
                local = free_local_port()
                spec = f"{host}:{local}:{node_address}:{port}"
                await master.add_forward("L", spec)
                relay.forwards.append({"centre": kernel_centre.id, "kind": "L", "spec": spec, "port": name})
                ports[name] = local
            relay.ip, relay.ports = host, ports
        if server_centre.network.tunnel:
            await _return_forwards(relay, server_centre)
    except ForwardError:
        await close_relay(relay, {kernel_centre.id: kernel_centre, server_centre.id: server_centre})
        raise
    return relay


async def _return_forwards(relay: Relay, server_centre: Centre) -> None:
    """On the server's login node, a port on its inner address back to each of ``relay``'s."""
    master, inner = _master(server_centre), server_centre.network.login_node_address
    target = "127.0.0.1" if relay.ip in ("localhost",) else relay.ip
    ports = {}
    for name, port in relay.ports.items():
        for attempt in range(5):  # a port someone else holds there: try another
            remote = random.randint(*_LOGIN_NODE_PORTS)
            spec = f"{inner}:{remote}:{target}:{port}"
            try:
                await master.add_forward("R", spec)
                break
            except ForwardError:
                if attempt == 4:
                    raise
        relay.forwards.append({"centre": server_centre.id, "kind": "R", "spec": spec, "port": name})
        ports[name] = remote
    relay.ip, relay.ports = inner, ports


async def restore_relay(relay: Relay, federation: Federation) -> None:
    """After a hub restart: the same forwards on the same ports (the server's kernel manager
    still connects there). The hub's side first and each side's shell port last, so a shell
    port that answers means the whole path is back."""
    def order(forward: dict) -> tuple[bool, bool]:
        return forward["kind"] == "R", forward.get("port") == "shell_port"
    for forward in sorted(relay.forwards, key=order):
        centre = federation.centre(forward["centre"])
        if centre is not None:
            await _master(centre).add_forward(forward["kind"], forward["spec"])


async def close_relay(relay: Relay, centres) -> None:
    """Cancel every forward (``centres``: a Federation, or {id: Centre})."""
    for forward in relay.forwards:
        centre = centres.get(forward["centre"]) if isinstance(centres, dict) else centres.centre(forward["centre"])
        if centre is not None:
            await _master(centre).cancel_forward(forward["kind"], forward["spec"])
    relay.forwards.clear()
