"""The one object that holds what a FedHub process shares across requests.

A hub runs many spawners and API handlers in one process; they share the loaded federation, the
centre watchers, the cancel backlog, the job sweepers, the claims cache, the kernels' index, the
reservation cache and the class placement locks. All of it lives here, not in module globals, so
that a newcomer finds every piece of shared state in one place and a test starts from a clean
one with :func:`fresh`.

The runtime sits in the lowest layer and imports nothing: each part is made by the module that
owns it (named beside each attribute), on first use.
"""

from __future__ import annotations


class Runtime:
    """What one process shares; each attribute is owned (filled and read) by one module."""

    def __init__(self) -> None:
        self.federations: dict = {}  # federation.federation_at: absolute path -> Federation
        self.claims = None  # claims.ClaimStore: the hub users' login claims (None: nobody has claims)
        self.monitors: dict = {}  # slurm.monitor.FederationMonitor.of: (federation, settings) -> monitor
        self.backlogs: dict = {}  # slurm.cancellations.CancelBacklog.at: state dir -> backlog
        self.sweepers: dict = {}  # slurm.sweep.JobSweeper.of: (federation, job name) -> sweeper
        self.kernels: dict = {}  # kernels.server_kernels: kernel id -> the ServerKernels it belongs to
        self.reservations = None  # classes.reservations.ReservationCache for the spawn form
        self.class_turns: dict = {}  # spawning.failover: class name -> asyncio.Lock (one placement at a time)
        self.tls_contexts: dict = {}  # spawning.launch: (key, cert, CA) files -> the hub's probe SSLContext
        self.continuations: dict = {}  # spawning.continuation: id -> Continuation (a session moving on)
        self.continue_tasks: dict = {}  # spawning.continuation: id -> the asyncio task doing it
        self.transfers: dict = {}  # workspace.transfers: id -> Transfer (files between two centres)
        self.transfer_tasks: dict = {}  # workspace.transfers: id -> the asyncio task doing it
        self.workspace_indexes: dict = {}  # workspace.sync.index_of: database URL -> WorkspaceIndex
        self.workspace_locks: dict = {}  # workspace.sync: user -> asyncio.Lock (one record or staging at a time)
        self.signing_cas: dict = {}  # jobs.tls: the CA files' stamp -> (CA key, CA certificate, trust bundle)
        # caches and bookkeeping of lower layers
        self.hub_ids: dict = {}  # statedir.hub_id: state dir -> this hub's id
        self.accounts: dict = {}  # logins.local_account: name -> (read at, UnixAccount | None)
        self.remote_uids: dict = {}  # logins.remote_uid: (login node, login) -> (read at, uid)
        self.associations: dict = {}  # projects: (centre, login) -> (read at, Slurm accounts)
        self.known_jobs: dict = {}  # slurm.job.known_jobs: centre -> job ids the sweep leaves alone
        self.socket_dir = None  # slurm.sshmux.socket_dir: where this process's ssh control sockets live


_current = Runtime()


def current() -> Runtime:
    """This process's runtime."""
    return _current


def fresh() -> Runtime:
    """Start this process over with an empty runtime (tests; a hub configured anew)."""
    global _current
    _current = Runtime()
    return _current
