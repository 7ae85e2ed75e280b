"""The workspace that follows the user: recorded when a server stops (and every few minutes while
it runs), brought to a centre while the next server's job waits in its queue.

Both go through the hub's index (``index.py``) and its plan (``plan.py``), one user at a time
(a lock per user, so a start right after a stop sees what the stop recorded). Bytes travel as
the user's logins at both ends (``transfer.py``); each file arrives whole and with the SHA-256
its source's scan gave, or not at all.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from ..i18n import _, ngettext
from .. import runtime
from ..federation import Centre, Federation
from ..logins import NoLogin, login_at
from ..units import human_bytes
from . import plan
from .storage import StorageFull, check_room
from .index import WorkspaceIndex
from .transfer import End, TransferError, arrange, carry, scan

log = logging.getLogger("JupyterHub.fedhub.workspace")


def index_of(engine) -> WorkspaceIndex:
    """The index in the hub's own database (one per engine and process)."""
    indexes = runtime.current().workspace_indexes
    key = str(engine.url)
    if key not in indexes:
        indexes[key] = WorkspaceIndex(engine)
    return indexes[key]


def _lock(user: str) -> asyncio.Lock:
    return runtime.current().workspace_locks.setdefault(user, asyncio.Lock())


def _versions(listed: dict) -> dict[str, plan.Version]:
    return {path: plan.Version(f["sha256"], f["size"], f["mtime"]) for path, f in listed.items()}


async def record(store: WorkspaceIndex, user: str, centre: Centre, login: str) -> list[tuple[str, str]]:
    """Bring the index up to date with the workspace at ``centre``; answers the conflicts (path,
    the name this centre's version is now kept under, renamed there)."""
    async with _lock(user):
        here = End(centre, login)
        versions = _versions(await scan(here))
        index = store.load(user)
        conflicts = plan.record(index, centre.id, versions, datetime.now(), centre.name)
        if conflicts:
            await arrange(here, renames=conflicts)
        store.save(user, index)
    if conflicts:
        log.info("[%s] workspace at %s: kept both versions of %s", user, centre.id, ", ".join(p for p, _ in conflicts))
    return conflicts


@dataclass
class Staged:
    """What staging did at a centre (the spawn's progress and the lab say it)."""

    files: int = 0
    bytes: int = 0
    sources: list[str] = field(default_factory=list)  # centre names the files came from
    kept_both: list[str] = field(default_factory=list)  # the names local versions were set aside under
    deleted: int = 0
    large: list[tuple[str, int, str]] = field(default_factory=list)  # (path, size, centre name): fetched when asked
    problems: list[str] = field(default_factory=list)  # a source that could not send (its files stay there)


def bringing(files: int, size: int, source: str) -> str:
    return ngettext("Bringing {n} file ({size}) from {centre}", "Bringing {n} files ({size}) from {centre}",
                    files).format(n=files, size=human_bytes(size), centre=source)


async def stage(store: WorkspaceIndex, federation: Federation, user: str, centre: Centre, login: str,
                progress=None) -> Staged:
    """Bring to ``centre``'s workspace what changed elsewhere since its copy (files above the
    centre's large-file size are only listed). ``progress(message, done_fraction)`` as bytes
    arrive. A source that cannot send is named in ``problems``; its files stay where they are."""
    done = Staged()
    async with _lock(user):
        index = store.load(user)
        if not index:
            return done  # nothing recorded yet: nothing to bring
        target = End(centre, login)
        names = {c.id: c.name for c in federation.centres}
        there = await scan(target)
        actions = plan.staging(index, centre.id, _versions(there), centre.workspace.large_file_mb * 1024 * 1024,
                               names, datetime.now())
        fetches = [a for a in actions if a.kind == "fetch"]
        try:
            await check_room(target, {a.path: a.version.size for a in fetches}, there)
        except StorageFull as e:  # the files stay where they are, and the user is told why
            done.problems.append(_("{n} files were not brought: {problem}").format(n=len(fetches), problem=e))
            actions = [a for a in actions if a.kind != "fetch"]
        renames = [(a.source_path, a.path) for a in actions if a.kind == "rename"]
        deletes = [a.path for a in actions if a.kind == "delete"]
        try:
            if renames or deletes:
                await arrange(target, renames, deletes)
            for a in actions:
                if a.kind == "rename":  # the local version, kept beside the newest, follows the user too
                    index[a.path] = plan.Entry(a.version, centre.id, {centre.id: a.version.sha256})
                    done.kept_both.append(a.path)
                elif a.kind == "delete":
                    index[a.path].seen[centre.id] = ""
                    done.deleted += 1
                elif a.kind == "list":
                    done.large.append((a.path, a.version.size, names.get(a.source, a.source)))
            by_source: dict[str, list[plan.Action]] = {}
            for a in actions:
                if a.kind == "fetch":
                    by_source.setdefault(a.source, []).append(a)
            total = sum(a.version.size for group in by_source.values() for a in group)
            for source_id, group in by_source.items():
                await _fetch(federation, user, source_id, target, group, index, done, total, progress)
        finally:
            store.save(user, index)
    return done


async def _fetch(federation: Federation, user: str, source_id: str, target: End, group: list[plan.Action],
                 index: dict, done: Staged, total: int, progress) -> None:
    source = federation.centre(source_id)
    if source is None:
        done.problems.append(_("{centre} is no longer in the federation; {n} files stay there").format(
            centre=source_id, n=len(group)))
        return
    size = sum(a.version.size for a in group)
    before = done.bytes
    message = bringing(len(group), size, source.name)
    if progress is not None:
        progress(message, before / total if total else 1.0)

    def moved(n: int) -> None:
        if progress is not None:
            progress(message, (before + n) / total if total else 1.0)

    try:
        end = End(source, login_at(source, user))
        result = await carry(end, target, [a.source_path for a in group], moved,  # a staging cut short resumes next time
                             {a.source_path: a.version.sha256 for a in group if a.version.sha256})
    except (NoLogin, TransferError) as e:
        log.warning("[%s] workspace: could not bring %d files from %s to %s: %s", user, len(group), source.id,
                    target.centre.id, e)
        done.problems.append(_("{n} files could not be brought from {centre}: {problem}").format(
            n=len(group), centre=source.name, problem=e))
        return
    for path, sha in result.get("sha256", {}).items():
        if path in index:
            index[path].seen[target.centre.id] = sha
    done.files += result["files"]
    done.bytes += result["bytes"]
    done.sources.append(source.name)
    log.info("[%s] workspace: brought %d files (%d bytes) from %s to %s", user, result["files"], result["bytes"],
             source.id, target.centre.id)


async def arrived(store: WorkspaceIndex, user: str, centre: str, sha256: dict[str, str]) -> None:
    """A transfer brought these files to ``centre``: where a file is the newest version the
    index knows, the centre now has it (so staging there does not bring it again)."""
    async with _lock(user):
        index = store.load(user)
        changed = False
        for path, sha in sha256.items():
            entry = index.get(path)
            if entry is not None and entry.newest is not None and entry.newest.sha256 == sha:
                changed = changed or entry.seen.get(centre) != sha
                entry.seen[centre] = sha
        if changed:
            store.save(user, index)


async def record_everywhere(store: WorkspaceIndex, federation: Federation, user: str) -> list[str]:
    """Record the user's workspace at every centre where they have a login, now (the lab's
    "Refresh"); answers what could not be read, by centre."""
    async def one(centre: Centre) -> str:
        try:
            await record(store, user, centre, login_at(centre, user))
        except NoLogin:
            return ""  # no account there: nothing of theirs to list
        except TransferError as e:
            log.warning("[%s] workspace at %s could not be read: %s", user, centre.id, e)
            return str(e)
        return ""
    said = await asyncio.gather(*(one(c) for c in federation.centres))
    return [problem for problem in said if problem]


def listing(store: WorkspaceIndex, federation: Federation, user: str) -> dict:
    """The user's workspace at every centre, as the hub last recorded it: per file its newest
    version (size, time, the centre holding it) and, per centre, whether it has that version
    ("newest"), an older one ("older") or none (absent); large files are marked."""
    index = store.load(user)
    files = []
    for path in sorted(index):
        entry = index[path]
        if entry.newest is None:
            continue
        at = {c: ("newest" if sha == entry.newest.sha256 else "older") for c, sha in entry.seen.items() if sha}
        holder = federation.centre(entry.centre)
        large = holder is not None and entry.newest.size > holder.workspace.large_file_mb * 1024 * 1024
        files.append({"path": path, "size": entry.newest.size, "mtime": entry.newest.mtime, "centre": entry.centre,
                      "at": at, "large": large})
    return {"centres": [{"id": c.id, "name": c.name, "folder": c.workspace.folder} for c in federation.centres],
            "files": files}


async def carry_folder(user: str, source: Centre, target: Centre, target_login: str, folder: str) -> int:
    """Carry a whole folder of the home (a saved session's) from ``source`` to ``target``; answers
    the files carried (none when the target already has them all)."""
    there = End(source, login_at(source, user), folder)
    listed = await scan(there)
    here = End(target, target_login, folder)
    have = await scan(here)
    lacking = [p for p, f in listed.items() if have.get(p, {}).get("sha256") != f["sha256"]]
    if not lacking:
        return 0
    return (await carry(there, here, lacking))["files"]
