"""A centre behind a firewall, on one machine: its login node and its compute node each get their
own network namespace.

    hub (host) --10.30.N.1/30-- login namespace --10.20.N.1/30-- node namespace (10.20.N.2)

The login namespace holds the centre's sshd and slurmctld; the node namespace holds slurmd and
so every job. The node namespace has one link, to the login namespace, no default route, and
the login namespace does not forward packets: the compute node cannot reach the hub, and the
hub reaches the node only through the login node's ssh, as at a real centre. Files (and munge's
socket) stay shared; only the network is private.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

NETNS_DIR = Path("/run/netns")
_LOCK = "/tmp/fedhub-netns.lock"  # two federations (a demo beside the tests) pick different subnets


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class PrivateNetwork:
    """Two namespaces and two veth pairs for one firewalled centre (``N`` picked free)."""

    def __init__(self, centre_id: str):
        self.centre_id = centre_id
        self.index: int | None = None

    # names and addresses (valid once started)
    @property
    def login_ns(self) -> str:
        return f"fedhub{self.index}-login"

    @property
    def node_ns(self) -> str:
        return f"fedhub{self.index}-node"

    @property
    def hub_side(self) -> str:
        """The host's end of the link to the login node (where the hub's ssh leaves from)."""
        return f"10.30.{self.index}.1"

    @property
    def login_address(self) -> str:
        """Where the hub reaches the login node's sshd."""
        return f"10.30.{self.index}.2"

    @property
    def login_inner_address(self) -> str:
        """The login node's address on the centre's private network (slurmctld, return forwards)."""
        return f"10.20.{self.index}.1"

    @property
    def node_address(self) -> str:
        return f"10.20.{self.index}.2"

    def in_login(self, argv: list[str]) -> list[str]:
        """``argv`` run on the login node's network (its commands, as an operator logged in there)."""
        return ["nsenter", f"--net={NETNS_DIR / self.login_ns}", *argv]

    def in_node(self, argv: list[str]) -> list[str]:
        # nsenter, not `ip netns exec`: that remounts /sys, which slurmd then fails on
        return ["nsenter", f"--net={NETNS_DIR / self.node_ns}", *argv]

    def start(self) -> None:
        with open(_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.index = self._free_index()
            self._create()

    def _free_index(self) -> int:
        for index in range(1, 255):
            login, node = NETNS_DIR / f"fedhub{index}-login", NETNS_DIR / f"fedhub{index}-node"
            if not login.exists() and not node.exists():
                return index
            if self._unused(f"fedhub{index}-login") and self._unused(f"fedhub{index}-node"):
                self._delete(index)  # left by a run that was killed: nothing runs in it
                return index
        raise RuntimeError("no free private network for a firewalled centre (fedhub1..254 all in use)")

    @staticmethod
    def _unused(ns: str) -> bool:
        if not (NETNS_DIR / ns).exists():
            return True
        return not _ip("netns", "pids", ns, check=False).stdout.strip()

    def _create(self) -> None:
        n, login, node = self.index, self.login_ns, self.node_ns
        outer, outer_peer, inner, inner_peer = f"fh{n}o", f"fh{n}ol", f"fh{n}i", f"fh{n}in"
        _ip("netns", "add", login)
        _ip("netns", "add", node)
        _ip("link", "add", outer, "type", "veth", "peer", "name", outer_peer, "netns", login)
        _ip("link", "add", inner, "netns", login, "type", "veth", "peer", "name", inner_peer, "netns", node)
        _ip("addr", "add", f"{self.hub_side}/30", "dev", outer)
        _ip("link", "set", outer, "up")
        for args in (("addr", "add", f"{self.login_address}/30", "dev", outer_peer),
                     ("addr", "add", f"{self.login_inner_address}/30", "dev", inner),
                     ("link", "set", outer_peer, "up"), ("link", "set", inner, "up"), ("link", "set", "lo", "up")):
            _ip("-n", login, *args)
        for args in (("addr", "add", f"{self.node_address}/30", "dev", inner_peer),
                     ("link", "set", inner_peer, "up"), ("link", "set", "lo", "up")):
            _ip("-n", node, *args)
        # the login node is a bridge for ssh only, never a router between the node and the hub
        subprocess.run(self.in_login(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]), check=True)

    def stop(self) -> None:
        """Delete both namespaces (their veth pairs go with them); call once their daemons are gone."""
        if self.index is not None:
            self._delete(self.index)

    @staticmethod
    def _delete(index: int) -> None:
        for ns in (f"fedhub{index}-node", f"fedhub{index}-login"):
            if (NETNS_DIR / ns).exists():
                _ip("netns", "del", ns, check=False)
        _ip("link", "del", f"fh{index}o", check=False)  # normally gone with the login namespace
