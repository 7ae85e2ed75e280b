"""FedHub's routes in the hub's REST API, all installed here and only here.

``configure_hub`` calls ``install_routes`` while the hub loads its configuration, before JupyterHub
builds its handlers from ``jupyterhub.apihandlers.default_handlers``; no module adds a route by
being imported. Each module below keeps one concern's handlers and its ``ROUTES``:

    kernels       /api/fedhub/users/<user>/kernels..., /api/fedhub/kernels/<id>/launcher...
    classes       /api/fedhub/classes...
    estimate      /api/fedhub/users/<user>/start-estimate
    sessions      /api/fedhub/users/<user>/servers   (where each server runs, its job's time left)
    continues     /api/fedhub/users/<user>/server/continue, .../continues/<id>   (a session moves on)
    culling       /api/fedhub/users/<user>/server/cull   (the idle culler's word before a stop)
    transfers     /api/fedhub/users/<user>/transfers...   (files between two centres' workspaces)
    quota         /api/fedhub/quota/...   (a server's way to the quota service)
    port_report   /api/batchspawner       (replaces batchspawner's handler)
"""

from __future__ import annotations

from jupyterhub.apihandlers import default_handlers

from . import classes, continues, culling, estimate, kernels, port_report, quota, sessions, transfers

ROUTES = [*kernels.ROUTES, *classes.ROUTES, *estimate.ROUTES, *sessions.ROUTES, *continues.ROUTES, *culling.ROUTES, *transfers.ROUTES, *quota.ROUTES, *port_report.ROUTES]


def install_routes(handlers: list | None = None) -> list:
    """Put FedHub's routes into JupyterHub's API routes (idempotent): a route already there under
    the same path, batchspawner's port report among them, is replaced."""
    handlers = default_handlers if handlers is None else handlers
    paths = {path for path, _ in ROUTES}
    handlers[:] = [h for h in handlers if h[0] not in paths] + ROUTES
    return handlers
