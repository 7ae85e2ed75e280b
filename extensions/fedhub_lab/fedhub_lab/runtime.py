"""The one object that holds what the notebook server's FedHub parts share across requests.

The kernelspecs made from the lab's dialog, the live provisioners (how a route or a move finds
the hub's word on a kernel) and the TLS contexts for the hub live here rather than in module
globals. A kernel's agent and the launcher run in other processes and share nothing with the server.
"""

from __future__ import annotations

import weakref


class LabRuntime:
    """What one notebook server shares; each attribute is owned by one module."""

    def __init__(self) -> None:
        self.requested_specs: dict[str, dict] = {}  # provisioner.specs: spec name -> centre + options
        # provisioner.provisioner: jupyter's kernel id -> its provisioner, while the kernel lives
        self.provisioners: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.hub_tls_contexts: dict = {}  # hub_tls: (key, certificate, CA) files -> the client SSLContext


_current = LabRuntime()


def current() -> LabRuntime:
    """This server's runtime."""
    return _current
