"""The FederatedSpawner's persisted state: a versioned envelope, and upgrades from old shapes.

JupyterHub stores ``get_state()`` in its database and hands it back after a restart, so every
shape ever written must keep loading. Versions:

- 0: plain batchspawner ``SlurmSpawner`` state (``{"job_id": ..., "job_status": ...}``), from a
  hub being migrated to FedHub; the operator names the centre it ran at (``legacy_centre``).
- 1: wrapspawner's bare envelope ``{"child_conf": {...}, "child_state": {...}}`` with the centre
  id kept in ``child_conf["centre_id"]``.
- 2 (current): ``{"version": 2, "centre": id, "request": {...}, "child_conf": {...},
  "child_state": {...}}``.
"""

from __future__ import annotations

from typing import Any

STATE_VERSION = 2


class StateError(ValueError):
    """Stored state that cannot be understood without the operator's help."""


def upgrade_state(state: dict[str, Any] | None, legacy_centre: str | None = None) -> dict[str, Any]:
    """Return ``state`` in the current shape ({} when there is nothing to restore)."""
    if not state:
        return {}
    version = state.get("version")
    if version == STATE_VERSION:
        return dict(state)
    if version is not None:
        raise StateError(f"spawner state version {version!r} is newer than this FedHub understands")
    if "child_state" in state or "child_conf" in state:
        conf = dict(state.get("child_conf") or {})
        centre = conf.pop("centre_id", None)
        child_state = dict(state.get("child_state") or {})
        if not centre:
            if not child_state.get("job_id"):
                return {}
            raise StateError("wrapspawner state without a centre id; cannot tell where its job runs")
        return _envelope(centre, None, conf, child_state)
    if state.get("job_id"):
        if not legacy_centre:
            raise StateError(
                f"state from plain batchspawner (job {state['job_id']}) needs "
                "c.FederatedSpawner.legacy_centre set to the centre those jobs run at"
            )
        child_state = {k: state[k] for k in ("job_id", "job_status") if k in state}
        return _envelope(legacy_centre, None, {}, child_state)
    return {}


def _envelope(centre: str, request: dict | None, child_conf: dict, child_state: dict) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "centre": centre,
        "request": request,
        "child_conf": child_conf,
        "child_state": child_state,
    }


def make_state(centre: str, request: dict | None, child_conf: dict, child_state: dict) -> dict[str, Any]:
    """The state to store for a server at ``centre``."""
    return _envelope(centre, request, dict(child_conf), dict(child_state))
