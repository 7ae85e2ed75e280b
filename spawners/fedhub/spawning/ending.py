"""Nothing lost at the end of a job: the session saved before the walltime ends, and brought back
by a later start.

Before the end: at every poll of a running server, once its job has ``snapshot_before_end``
seconds left (the watcher's reading of Slurm's EndTime, so an operator's change counts), the hub
asks the server to save its session (``fedhub_lab``'s ``session/save``: every kernel's
variables in the user's home, 0600), once per job, and keeps its description
(``snapshots.py``). The lab saves the open notebooks itself at its warnings.

After a start with ``"restore": "<id>"`` (the form's choice or the REST body): the new server,
at any centre that sees the snapshot, starts the kernels with their variables and reopens the
documents' sessions before the server is handed to the user. A restore that cannot be done is
said on the progress page; the server starts all the same and the snapshot is kept.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timezone

from ..i18n import _
from .server_calls import ServerCalls, SessionCallError
from .snapshots import SnapshotStore, describe, summary


class SessionEnding:
    """One spawner's snapshots: made before its job's end, restored after a start."""

    def __init__(self, spawner):
        self.spawner = spawner
        self.saved_for = ""  # the job whose session is saved (or being saved)
        self.task: asyncio.Task | None = None
        self.restore_from: dict | None = None  # the snapshot this start restores

    @property
    def store(self) -> SnapshotStore:
        return SnapshotStore(self.spawner.state_dir)

    async def check(self, info) -> None:
        """Called at each poll with Slurm's latest word on the job."""
        spawner = self.spawner
        lead = spawner.snapshot_before_end
        if not lead or info is None or not info.is_running or info.end_time is None or spawner.continuing:
            return
        job_id = spawner.job.job_id
        left = (info.end_time.astimezone() - datetime.now().astimezone()).total_seconds()
        if left > lead or self.saved_for == job_id or not spawner.ready:
            return
        self.saved_for = job_id
        spawner.log.info("%s job %s ends in %.0f s: saving the session", spawner._where, job_id, left)
        self.task = asyncio.ensure_future(self.snapshot("walltime"))

    async def snapshot(self, reason: str) -> dict | None:
        """Have the running server save its session now; the hub's record of it, or None."""
        spawner = self.spawner
        job = spawner.job  # kept: the server may stop (and forget its job) while the save is asked
        if job is None:
            return None
        centre = job.centre
        try:
            saved = await ServerCalls(spawner, spawner.ip, spawner.port).call(
                "save", {"id": secrets.token_hex(8), "centre": centre.id, "max_bytes": spawner.snapshot_max_bytes})
        except SessionCallError as e:
            spawner.log.error("%s could not save the session before the end of job %s: %s", spawner._where,
                              job.job_id, e)
            return None
        record = describe(saved, spawner.name or "", centre, reason)
        self.store.add(spawner.user.name, record)
        spawner.log.info("%s saved %s in %s s (%d variables, %d bytes) in ~/.fedhub/sessions/%s at %s",
                         spawner._where, summary(record), saved["seconds"], record["variables"], record["bytes"],
                         record["id"], centre.id)
        return record

    def offers(self, most: int = 3) -> list[dict]:
        """The saved sessions the spawn form offers to restore: this server's, not yet restored,
        newest first."""
        name = self.spawner.name or ""
        mine = [s for s in self.store.list(self.spawner.user.name) if s["server"] == name and not s.get("restored")]
        return [{"id": s["id"], "summary": summary(s)} for s in mine[:most]]

    def choose(self, snapshot_id) -> dict | None:
        """The user's own snapshot ``snapshot_id`` (None: no such one of theirs)."""
        self.restore_from = self.store.get(self.spawner.user.name, snapshot_id) if snapshot_id else None
        return self.restore_from

    async def restore(self) -> None:
        """After the server listens, before it is handed over: bring the chosen session back."""
        spawner, record = self.spawner, self.restore_from
        self.restore_from = None
        if record is None:
            return
        what = summary(record)
        spawner.progress_log.emit(_("Restoring {what}").format(what=what), 95)
        try:
            restored = await ServerCalls(spawner, spawner.ip, spawner.port).call(
                "restore", {"id": record["id"], "where": f"at {spawner.job.centre.name}"})
        except SessionCallError as e:
            message = _("Could not restore {what}: {problem}. The server starts without it; the snapshot is "
                        "kept.").format(what=what, problem=e)
            spawner.log.warning("%s could not restore %s: %s", spawner._where, record["id"], e)
            spawner.progress_log.emit(message, 96)
            return
        self.store.mark_restored(spawner.user.name, record["id"], datetime.now(timezone.utc).isoformat())
        spawner.progress_log.emit(_("Restored {what}: {variables} variables").format(
            what=what, variables=sum(k["variables"] for k in restored["kernels"])), 97)
