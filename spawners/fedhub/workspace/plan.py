"""What to do with a user's workspace at a centre, decided from the hub's index alone (no I/O).

The hub keeps, per user and path, the newest version (its SHA-256, size, time, and the centre
that holds it) and, per centre, which version that centre last had (``seen``). Two moments use it:

- ``record`` after a scan of a centre (the server stops, or every few minutes while it runs):
  a file that changed there since that centre last had the newest version becomes the newest;
  a file changed there while another centre changed it too is a conflict: both are kept, the
  version recorded later under a name that says its centre and time (the caller renames it at
  that centre, and every centre then has both under the same names);
- ``staging`` before a server starts at a centre: each file whose newest version is elsewhere
  is fetched (or only listed, above the large-file size); a file changed here that was never
  recorded, while another centre changed it too, is first renamed the same way; a file changed
  or deleted only here stays as it is (the next record makes it the newest).

A delete travels like a change: a file gone at a centre that had the newest version is gone
everywhere, unless another centre changed it meanwhile (the change wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath


@dataclass
class Version:
    sha256: str
    size: int
    mtime: float


@dataclass
class Entry:
    """One path of a user's workspace in the hub's index."""

    newest: Version | None  # None: deleted (a tombstone, so centres that still have it delete it)
    centre: str  # where the newest version is (or was deleted)
    seen: dict[str, str] = field(default_factory=dict)  # centre -> the SHA-256 it last had ("": none)


@dataclass(frozen=True)
class Action:
    kind: str  # "fetch", "list" (too large: fetched when asked), "delete", "rename" (a local version kept)
    path: str  # where it goes at the centre being staged
    source: str  # the centre to fetch from (the staged centre itself for a rename; "" for a delete)
    source_path: str  # its path there
    version: Version | None = None


def _changed(scan: dict[str, Version], path: str, entry: Entry, centre: str) -> bool:
    """Whether the centre's file differs from what the hub last knew it had."""
    here = scan.get(path)
    return (here.sha256 if here else "") != entry.seen.get(centre, "")


def record(index: dict[str, Entry], centre: str, scan: dict[str, Version],
           when: datetime, centre_name: str) -> list[tuple[str, str]]:
    """Bring the index up to date with ``scan`` of ``centre``; answers the conflicts as
    (path, the name this centre's version is now kept under in the index)."""
    conflicts = []
    for path, here in scan.items():
        entry = index.get(path)
        if entry is None:
            index[path] = Entry(here, centre, {centre: here.sha256})
            continue
        if entry.newest is not None and here.sha256 == entry.newest.sha256:
            entry.seen[centre] = here.sha256
            continue
        if not _changed(scan, path, entry, centre):
            continue  # this centre is only behind: staging brings it the newest
        newest_is_ours = entry.centre == centre or entry.seen.get(centre, "") == (
            entry.newest.sha256 if entry.newest else "")
        if newest_is_ours:
            entry.newest, entry.centre = here, centre
            entry.seen[centre] = here.sha256
        else:  # changed here and elsewhere since this centre last synced: keep both
            kept = conflict_name(path, centre_name, when)
            index[kept] = Entry(here, centre, {centre: here.sha256})
            entry.seen[centre] = ""  # its own version moves to the kept name; the newest comes here
            conflicts.append((path, kept))
    renamed = {kept for _, kept in conflicts}  # in the scan under their old name, until the caller renames them
    for path, entry in list(index.items()):
        if path in scan or path in renamed or not entry.seen.get(centre) or entry.newest is None:
            continue
        if entry.seen[centre] == entry.newest.sha256:  # deleted here, unchanged elsewhere since
            entry.newest, entry.centre = None, centre
        entry.seen[centre] = ""  # (changed elsewhere meanwhile: the change wins and comes back)
    return conflicts


def staging(index: dict[str, Entry], centre: str, scan: dict[str, Version], large_file_bytes: int,
            names: dict[str, str], when: datetime) -> list[Action]:
    """What to bring to ``centre`` (whose files are ``scan``) before a server starts there.
    ``names``: centre id -> its name, for the names of conflict copies."""
    actions = []
    for path, entry in sorted(index.items()):
        here = scan.get(path)
        if entry.newest is None:
            if here is not None and here.sha256 == entry.seen.get(centre):
                actions.append(Action("delete", path, "", path))
            continue
        if entry.centre == centre or (here is not None and here.sha256 == entry.newest.sha256):
            continue
        seen = entry.seen.get(centre, "")
        if seen == entry.newest.sha256 and (here is None or here.sha256 != seen):
            continue  # changed (or deleted) only here since: it stays, and the next record says so
        if here is None or here.sha256 == seen:
            kind = "list" if entry.newest.size > large_file_bytes else "fetch"
            actions.append(Action(kind, path, entry.centre, path, entry.newest))
        else:  # changed here, never recorded, and changed elsewhere too: keep this one aside
            kept = conflict_name(path, names.get(centre, centre), when)
            actions.append(Action("rename", kept, centre, path, here))
            actions.append(Action("fetch", path, entry.centre, path, entry.newest))
    return actions


def conflict_name(path: str, centre_name: str, when: datetime) -> str:
    """"dir/analysis.ipynb" -> "dir/analysis (Gamma 2026-12-03 10:14).ipynb": the version from
    ``centre_name`` kept beside the other."""
    pure = PurePosixPath(path)
    stem, suffix = (pure.name, "") if pure.name.startswith(".") and pure.name.count(".") == 1 \
        else (pure.stem, pure.suffix)
    short = centre_name.split()[0] if centre_name.split() else centre_name
    name = f"{stem} ({short} {when:%Y-%m-%d %H:%M}){suffix}"
    return str(pure.with_name(name))
