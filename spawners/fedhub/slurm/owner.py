"""Who a job belongs to, written into the job itself so the hub can find it again.

Job name ``fedhub-<hub id>`` (all of this hub's jobs, one ``squeue --name``) and comment
``fedhub:<kind>:<centre>:<hub user>:<server>:<submission>`` (which server, which attempt; the
centre too, as two federation entries may name one Slurm cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class JobOwner:
    """Whose job this is, as written into the job (name and comment)."""

    hub_id: str
    hub_user: str
    server: str = ""
    kind: str = "server"

    @property
    def job_name(self) -> str:
        return f"fedhub-{self.hub_id}"

    def comment(self, centre: str, submission: str) -> str:
        return ":".join(("fedhub", self.kind, centre, quote(self.hub_user, safe=""), quote(self.server, safe=""),
                         submission))


def parse_comment(comment: str) -> dict | None:
    """A job comment written by ``JobOwner.comment``, read back (None if it is not FedHub's)."""
    parts = comment.split(":")
    if len(parts) != 6 or parts[0] != "fedhub":
        return None
    return {"kind": parts[1], "centre": parts[2], "hub_user": unquote(parts[3]), "server": unquote(parts[4]),
            "submission": parts[5]}
