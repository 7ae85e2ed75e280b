"""The FederatedSpawner's stored state: a versioned shape, and upgrades from every older one.

JupyterHub stores ``get_state()`` in its database and hands it back after a restart, so every
shape ever written must keep loading. Versions:

- 0: plain batchspawner ``SlurmSpawner`` state (``{"job_id": ..., "job_status": ...}``), from a
  hub being migrated to FedHub; the operator names the centre it ran at (``legacy_centre``).
- 1: wrapspawner's envelope ``{"child_conf": {...}, "child_state": {...}}`` with the centre id
  in ``child_conf["centre_id"]``.
- 2: ``{"version": 2, "centre", "request", "child_conf", "child_state"}`` (FedHub's child spawner).
- 3 (current): ``{"version": 3, "centre", "request", "job": {"job_id", "login", "submission"}}``
  (the Slurm job lifecycle), and ``"tunnel": {"node", "port", "local_port"}`` for a server at a
  tunnel centre. ``login`` is None when an older shape did not record it.
"""

from __future__ import annotations

from typing import Any

STATE_VERSION = 3


class StateError(ValueError):
    """Stored state that cannot be understood without the operator's help."""


def upgrade_state(state: dict[str, Any] | None, legacy_centre: str | None = None) -> dict[str, Any]:
    """Return ``state`` in the current shape ({} when there is nothing to restore)."""
    if not state:
        return {}
    version = state.get("version")
    if version == STATE_VERSION:
        return dict(state)
    if version == 2:
        return _from_child(state.get("centre"), state.get("request"), state.get("child_conf") or {},
                           state.get("child_state") or {})
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
        return _from_child(centre, None, conf, child_state)
    if state.get("job_id"):
        if not legacy_centre:
            raise StateError(
                f"state from plain batchspawner (job {state['job_id']}) needs "
                "c.FederatedSpawner.legacy_centre set to the centre those jobs run at"
            )
        return _from_child(legacy_centre, None, {}, state)
    return {}


def _from_child(centre: str | None, request: dict | None, child_conf: dict, child_state: dict) -> dict[str, Any]:
    if not child_state.get("job_id"):
        return {}
    return make_state(centre, request, {"job_id": str(child_state["job_id"]),
                                        "login": child_conf.get("req_username"), "submission": ""})


def make_state(centre: str, request: dict | None, job: dict) -> dict[str, Any]:
    """The state to store for a server whose job (``SlurmJob.to_state()``) runs at ``centre``."""
    return {"version": STATE_VERSION, "centre": centre, "request": request,
            "job": {k: job.get(k) for k in ("job_id", "login", "submission")}}
