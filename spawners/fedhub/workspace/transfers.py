"""A user's transfers between two centres' workspaces, as the REST API starts and follows them
(``hub/api/transfers.py``): what was asked, how far it is, and how it ended.

A transfer first scans the source's workspace as the user (so a folder means its files, and
the total is known), then carries the files (``transfer.py``). A stream cut short (a login node
restarted, a connection dropped) is tried again, up to ``TRIES`` times, from where it stopped;
a cancel stops both ends, and the target keeps only the files that arrived whole.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .. import runtime
from ..federation import Centre
from ..logins import login_at
from . import sync
from .index import WorkspaceIndex
from .storage import StorageFull, check_room, limited
from .transfer import End, TransferError, carry, forget, scan
from ..i18n import _

log = logging.getLogger("JupyterHub.fedhub.transfers")
QUEUED, COPYING, DONE, FAILED, CANCELLED = "queued", "copying", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
KEPT_S = 3600
TRIES = 3
RETRY_AFTER_S = (2.0, 5.0)  # before the second and the third try


class PathRefused(ValueError):
    """A path that is not inside the workspace (the message names it)."""


def checked_paths(paths) -> list[str]:
    """The asked paths, relative to the workspace: refused by name if absolute, with '..', or empty."""
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise PathRefused(_("give paths as a list of strings, relative to your workspace, e.g. {example}").format(
            example='["data/run1.csv"]'))
    out = []
    for path in paths:
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts or "\0" in path:
            raise PathRefused(_("{path} is not a path inside your workspace (no '/' at the start, no '..')").format(
                path=repr(path)))
        out.append(str(pure) if str(pure) != "." else "")
    return out


@dataclass
class Transfer:
    id: str
    user: str
    source: str
    target: str
    paths: list[str]
    status: str = QUEUED
    bytes: int = 0
    total: int = 0
    files: int = 0
    reason: str = ""
    resumed: int = 0  # bytes not sent again after an interruption
    code: str = ""  # why it failed, for scripts: "storage_quota", "interrupted", "refused" ("" otherwise)
    started: float = field(default_factory=time.time)
    ended: float = 0.0

    def public(self) -> dict:
        return {"id": self.id, "user": self.user, "from": self.source, "to": self.target, "paths": self.paths,
                "status": self.status, "bytes": self.bytes, "total": self.total, "files": self.files,
                "reason": self.reason, "resumed": self.resumed, "code": self.code}


def transfers() -> dict:
    return runtime.current().transfers


def _chosen(listed: dict, paths: list[str], skipped: list = ()) -> list[str]:
    """The workspace's files the asked paths name (a folder: every file in it); refused by name
    when a path names nothing there, or a link (never followed, in or out of the workspace)."""
    chosen: dict[str, None] = {}
    not_carried = {s.get("path"): s.get("reason", "") for s in skipped}
    for path in paths:
        if path.rstrip("/") in not_carried:
            raise TransferError(_("{path} is not carried: {reason}").format(path=repr(path),
                                                                            reason=not_carried[path.rstrip("/")]))
        found = [f for f in listed if not path or f == path or f.startswith(path.rstrip("/") + "/")]
        if not found:
            raise TransferError(_("{path} is not in your workspace there").format(path=repr(path)))
        chosen.update(dict.fromkeys(sorted(found)))
    return list(chosen)


async def _run(record: Transfer, source: End, target: End, store: WorkspaceIndex | None) -> None:
    expected: dict = {}
    try:
        skipped: list = []
        listed = await scan(source, skipped)
        files = _chosen(listed, record.paths, skipped)
        expected = {f: listed[f]["sha256"] for f in files}
        record.total = sum(listed[f]["size"] for f in files)
        if limited(target):  # the target's workspace is scanned only where its storage is limited
            await check_room(target, {f: listed[f]["size"] for f in files}, await scan(target))
        record.status = COPYING

        def progress(moved: int) -> None:
            record.bytes = moved

        for attempt in range(1, TRIES + 1):
            try:
                result = await carry(source, target, files, progress, expected)
                break
            except TransferError as e:
                if not e.resumable or attempt == TRIES:
                    raise
                record.reason = f"interrupted ({e}); going on from where it stopped, try {attempt + 1} of {TRIES}"
                log.warning("[%s] transfer %s interrupted, trying again: %s", record.user, record.id, e)
                await asyncio.sleep(RETRY_AFTER_S[attempt - 1])
        record.files, record.bytes, record.status, record.reason = result["files"], result["bytes"], DONE, ""
        record.resumed = result.get("resumed", 0)
        if store is not None:  # staging at the target need not bring these again
            await sync.arrived(store, record.user, target.centre.id, result.get("sha256", {}))
        log.info("[%s] transfer %s: %d files (%d bytes, %d of them resumed) from %s to %s", record.user, record.id,
                 record.files, record.bytes, record.resumed, source.centre.id, target.centre.id)
    except asyncio.CancelledError:
        record.status, record.reason = CANCELLED, "cancelled"
        try:  # what arrived of a file cut short is not kept after a cancel
            await asyncio.shield(forget(target, expected))
        except (TransferError, OSError) as e:
            log.warning("[%s] transfer %s: could not remove partial files at %s: %s", record.user, record.id,
                        target.centre.id, e)
    except TransferError as e:
        record.status, record.reason = FAILED, str(e)
        record.code = "storage_quota" if isinstance(e, StorageFull) else "interrupted" if e.resumable else "refused"
        if e.resumable:
            record.reason += "; start it again to go on from where it stopped"
        log.warning("[%s] transfer %s failed: %s", record.user, record.id, e)
    except Exception as e:  # noqa: BLE001 - the record says what broke; the log has the trace
        log.exception("[%s] transfer %s failed", record.user, record.id)
        record.status, record.reason = FAILED, f"{type(e).__name__}: {e}"
    finally:
        record.ended = time.time()


def begin(user: str, source: Centre, target: Centre, paths: list[str], store: WorkspaceIndex | None = None) -> Transfer:
    """Start a transfer of ``paths`` from ``source`` to ``target`` as ``user``'s logins there
    (NoLogin, with the reason, when either has none)."""
    for tid, t in list(transfers().items()):
        if t.status in FINISHED and time.time() - t.ended > KEPT_S:
            del transfers()[tid]
            runtime.current().transfer_tasks.pop(tid, None)
    ends = End(source, login_at(source, user)), End(target, login_at(target, user))
    record = Transfer(secrets.token_hex(8), user, source.id, target.id, paths)
    transfers()[record.id] = record
    runtime.current().transfer_tasks[record.id] = asyncio.ensure_future(_run(record, *ends, store))
    return record


def cancel(record: Transfer) -> bool:
    task = runtime.current().transfer_tasks.get(record.id)
    if record.status in FINISHED or task is None or task.done():
        return False
    task.cancel()
    return True
