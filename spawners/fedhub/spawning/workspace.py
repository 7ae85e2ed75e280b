"""One spawner's workspace (``workspace/sync.py``): brought to the centre while the job waits in
the queue (the progress page says "Bringing 12 files (48 MB) from Alpha"), recorded every
``workspace_record_interval`` while the server runs and once more after it stops.

Nothing here stops a server from starting: files that cannot be brought stay at their centre,
and the progress page says so; the server is handed over only once staging has ended, so the
lab opens with the files.
"""

from __future__ import annotations

import asyncio
import random
import time

from ..i18n import _, ngettext
from ..logins import NoLogin
from ..workspace.sync import Staged, carry_folder, human_bytes, index_of, record, stage
from ..workspace.transfer import TransferError

SESSIONS_FOLDER = ".fedhub/sessions"  # where a server saves a session (fedhub_lab's sessions, in the home)
STEP = 0.05  # the progress page hears of staging at most every 5 % of its bytes (and on each source)


class SpawnerWorkspace:
    def __init__(self, spawner):
        self.spawner = spawner
        self.staging: asyncio.Task | None = None
        self.staged: Staged | None = None
        self.recording: asyncio.Task | None = None
        # the first periodic recording one interval (and a random part of one) after this object
        # is made, so a restarted hub does not scan every running server's workspace at once
        self.recorded_at = time.monotonic()
        self.spread = random.uniform(0, 0.5)

    @property
    def store(self):
        return index_of(self.spawner.db.get_bind())

    def holdings(self) -> dict[str, int]:
        """Bytes of the user's workspace each centre holds (placement prefers a large holder)."""
        if not self.spawner.workspace_follows or self.spawner.db is None:
            return {}
        return self.store.holdings(self.spawner.user.name)

    def begin_staging(self, centre, login: str) -> None:
        """Start bringing the workspace to ``centre`` (called once the job is submitted)."""
        if self.spawner.workspace_follows and self.spawner.db is not None:
            self.staged = None
            self.staging = asyncio.ensure_future(self._stage(centre, login))

    async def finish_staging(self) -> None:
        """Wait for staging to end (called when the server answers, before it is handed over)."""
        if self.staging is not None:
            task, self.staging = self.staging, None
            await task

    def cancel_staging(self) -> None:
        if self.staging is not None and not self.staging.done():
            self.staging.cancel()  # carry() stops both ends; whatever arrived whole is kept
        self.staging = None

    async def _stage(self, centre, login: str) -> None:
        spawner = self.spawner
        emitted = {"message": "", "fraction": -1.0}

        def progress(message: str, fraction: float) -> None:
            if message == emitted["message"] and fraction - emitted["fraction"] < STEP and fraction < 1:
                return
            emitted.update(message=message, fraction=fraction)
            spawner.progress_log.emit(f"{message}: {fraction:.0%}", spawner.progress_log.last_progress)

        if self.recording is not None:  # the last stop's recording first, wherever it ran
            await asyncio.gather(self.recording, return_exceptions=True)
        await self._bring_snapshot(centre, login)
        try:
            done = await stage(self.store, spawner.federation, spawner.user.name, centre, login, progress)
        except Exception as e:  # noqa: BLE001 - staging never stops a server from starting
            if isinstance(e, (NoLogin, TransferError, OSError)):
                spawner.log.warning("%s workspace not brought to %s: %s", spawner._where, centre.id, e)
            else:
                spawner.log.exception("%s workspace not brought to %s", spawner._where, centre.id)
            spawner.progress_log.emit(_("Your workspace could not be brought to {centre} ({problem}); your files "
                                        "stay where they are").format(centre=centre.name, problem=e),
                                      spawner.progress_log.last_progress)
            return
        self.staged = done
        for problem in done.problems:
            spawner.progress_log.emit(problem, spawner.progress_log.last_progress)
        if done.files:
            spawner.progress_log.emit(ngettext("Brought {n} file from {centres}", "Brought {n} files from {centres}",
                                               done.files).format(n=done.files, centres=", ".join(done.sources)),
                                      spawner.progress_log.last_progress)
        if done.kept_both:  # said once, on this start's progress page
            spawner.progress_log.emit(
                _("Changed here and at another centre, so both are kept: yours from {centre} as {names}").format(
                    centre=centre.name, names=", ".join(done.kept_both)), spawner.progress_log.last_progress)
        if done.large:
            size = sum(s for _, s, _ in done.large)
            where = ", ".join(sorted({c for _, _, c in done.large}))
            spawner.progress_log.emit(ngettext(
                "{n} large file ({size}) stays at {centres} until you copy it (the lab's Centres panel: Copy here)",
                "{n} large files ({size}) stay at {centres} until you copy them (the lab's Centres panel: Copy here)",
                len(done.large)).format(n=len(done.large), size=human_bytes(size), centres=where),
                spawner.progress_log.last_progress)

    async def _bring_snapshot(self, centre, login: str) -> None:
        """A session saved at another centre, to be restored here: its folder comes first."""
        spawner = self.spawner
        snapshot = spawner.ending.restore_from
        if not snapshot or snapshot.get("centre") in (None, centre.id):
            return
        source = spawner.federation.centre(snapshot["centre"])
        if source is None:
            return  # the restore itself says it cannot find the session
        spawner.progress_log.emit(_("Bringing the session of {source} to {centre}").format(
            source=snapshot.get("centre_name", source.name), centre=centre.name), spawner.progress_log.last_progress)
        try:
            await carry_folder(spawner.user.name, source, centre, login, f"{SESSIONS_FOLDER}/{snapshot['id']}")
        except (NoLogin, TransferError, OSError) as e:
            spawner.log.warning("%s session %s not brought from %s: %s", spawner._where, snapshot["id"], source.id, e)

    def record_soon(self, centre, login: str, *, every: float | None = None) -> None:
        """Record the workspace at ``centre`` in the background (``every``: only if that long has
        passed since the last recording of this server)."""
        spawner = self.spawner
        if not spawner.workspace_follows or spawner.db is None:
            return
        if self.recording is not None and not self.recording.done():
            return
        if every is not None and (not every or time.monotonic() - self.recorded_at < every * (1 + self.spread)):
            return
        self.recorded_at = time.monotonic()
        self.recording = asyncio.ensure_future(self._record(centre, login))

    async def _record(self, centre, login: str) -> None:
        spawner = self.spawner
        try:
            await record(self.store, spawner.user.name, centre, login)
        except (NoLogin, TransferError, OSError) as e:
            spawner.log.warning("%s workspace at %s not recorded: %s", spawner._where, centre.id, e)
        except Exception:  # noqa: BLE001 - a background task: its failure is logged, not lost
            spawner.log.exception("%s workspace at %s not recorded", spawner._where, centre.id)
