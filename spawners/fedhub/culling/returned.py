"""Core-hours culling gave back: what the rest of each culled job's walltime would have been
charged, per user, in the hub's state directory (``culled/<user as hex>.json``, 0600).

The hub writes an entry when it culls (``hub/api/culling.py``); the quota service adds the
period's total to each allocation it reports, and the lab's quota panel shows it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..statedir import ensure_state_dir, write_private_json

KEPT_DAYS = 400  # longer than any allocation period


def returned_core_hours(seconds_left: float, cores: int, charge_rate: float) -> float:
    """What the walltime left would have been charged (Slurm charges a job for the time it ran)."""
    return round(max(0.0, seconds_left) / 3600 * cores * charge_rate, 4)


class CulledLedger:
    def __init__(self, state_dir: str):
        self.folder = Path(state_dir) / "culled"

    def _file(self, user: str) -> Path:
        return self.folder / f"{user.encode().hex()}.json"

    def entries(self, user: str) -> list[dict]:
        try:
            return json.loads(self._file(user).read_text())
        except (FileNotFoundError, ValueError):
            return []

    def add(self, user: str, entry: dict) -> None:
        ensure_state_dir(str(self.folder))
        horizon = datetime.now(timezone.utc) - timedelta(days=KEPT_DAYS)
        kept = [e for e in self.entries(user) if datetime.fromisoformat(e["at"]) >= horizon]
        write_private_json(self._file(user), [*kept, entry], durable=False)

    def total(self, user: str, centre: str, since: datetime) -> tuple[float, int]:
        """(core-hours returned, servers culled) at ``centre`` since ``since``."""
        since = since if since.tzinfo else since.astimezone()
        mine = [e for e in self.entries(user) if e["centre"] == centre and datetime.fromisoformat(e["at"]) >= since]
        return round(sum(e["core_hours"] for e in mine), 4), len(mine)
