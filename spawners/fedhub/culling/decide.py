"""Which idle servers to stop: one rule, read from the federation file, used by the culler's
arbiter and shown in the docs. No I/O."""

from __future__ import annotations

from ..federation import Federation


def idle_timeout(federation: Federation, server: dict) -> int:
    """Seconds a server may be idle before it is culled (0: never), from JupyterHub's server
    model with its ``state`` (FedHub's: the centre and the request's partition)."""
    state = server.get("state") or {}
    centre = federation.centre(state.get("centre") or "")
    if centre is None:
        return 0  # not a FedHub server this federation knows: never culled
    partition = (state.get("request") or {}).get("partition")
    return centre.idle_timeouts(partition)[0]


def should_cull(federation: Federation, server: dict, inactive_s: float) -> bool:
    timeout = idle_timeout(federation, server)
    return bool(timeout) and inactive_s >= timeout


def shortest_timeout(federation: Federation) -> int:
    """The shortest server timeout anywhere (0: no centre culls), which paces the culler."""
    timeouts = [centre.idle_timeouts(p.name)[0] for centre in federation.centres for p in centre.partitions]
    return min((t for t in timeouts if t), default=0)
