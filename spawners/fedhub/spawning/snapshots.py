"""Saved sessions: what the hub remembers of each snapshot a user's server wrote before its end
(walltime, culling), so the next start, at any centre, can offer to restore it.

The snapshot itself (each kernel's variables, which document used which kernel) stays in the
user's own home at the centre (``~/.fedhub/sessions/<id>/``, 0700, written by their server);
the hub keeps only its description, per user, in its state directory:

    {"id", "server", "centre", "centre_name", "saved" (ISO time), "reason" ("walltime", "idle"),
     "kernels", "notebooks", "variables", "bytes", "unmovable": [{"kernel", "name", "reason"}]}

The newest KEPT per user are kept; an older one's files stay in the user's home.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..i18n import _, ngettext
from ..statedir import ensure_state_dir, write_private_json

KEPT = 5
_ID = re.compile(r"[0-9a-f]{8,32}")


class SnapshotStore:
    def __init__(self, state_dir: str):
        self.folder = Path(state_dir) / "snapshots"

    def _file(self, user: str) -> Path:
        return self.folder / f"{user.encode().hex()}.json"  # any hub user name, as a safe file name

    def list(self, user: str) -> list[dict]:
        try:
            return json.loads(self._file(user).read_text())
        except FileNotFoundError:
            return []

    def get(self, user: str, snapshot_id: str) -> dict | None:
        if not isinstance(snapshot_id, str) or not _ID.fullmatch(snapshot_id):
            return None
        return next((s for s in self.list(user) if s["id"] == snapshot_id), None)

    def add(self, user: str, record: dict) -> None:
        ensure_state_dir(str(self.folder))
        kept = [record] + [s for s in self.list(user) if s["id"] != record["id"]]
        write_private_json(self._file(user), kept[:KEPT])

    def mark_restored(self, user: str, snapshot_id: str, when: str) -> None:
        records = self.list(user)
        for s in records:
            if s["id"] == snapshot_id:
                s["restored"] = when
        write_private_json(self._file(user), records)


def describe(saved: dict, server: str, centre, reason: str) -> dict:
    """The hub's record of a session the server saved (its answer to ``session/save``)."""
    documents = {s["document"] or s["path"] for s in saved["sessions"] if s["type"] == "notebook"}
    return {"id": saved["id"], "server": server, "centre": centre.id, "centre_name": centre.name,
            "saved": saved["saved"], "reason": reason, "kernels": len(saved["kernels"]), "notebooks": len(documents),
            "variables": sum(k["variables"] for k in saved["kernels"]),
            "bytes": sum(k["size"] for k in saved["kernels"]),
            "unmovable": [{"kernel": k["n"], **u} for k in saved["kernels"] for u in k["unmovable"]]
            + [{"kernel": None, "name": f"a {k['name']} kernel", "reason": k["reason"]}
               for k in saved.get("not_saved", [])]}


def summary(record: dict) -> str:
    """"the session of 10:14 at Alpha (3 kernels, 5 notebooks)" for the form and progress."""
    from datetime import datetime
    when = datetime.fromisoformat(record["saved"]).astimezone()
    k, n = record["kernels"], record["notebooks"]
    return _("the session of {when} at {centre} ({kernels}, {notebooks})").format(
        when=f"{when:%Y-%m-%d %H:%M}", centre=record["centre_name"],
        kernels=ngettext("{n} kernel", "{n} kernels", k).format(n=k),
        notebooks=ngettext("{n} notebook", "{n} notebooks", n).format(n=n))
