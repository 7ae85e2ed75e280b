"""What a user's workspace holds at this centre: every plain file with its size, time and
SHA-256, as the hub's index wants it (``fedhub.workspace.plan``).

A link is not followed (it is listed as skipped, with the reason), nor is anything outside the
workspace; Jupyter's checkpoints and files still arriving are not the user's files to carry; a
name the hub could not carry (not UTF-8) is skipped by name. What arrived of a file before a copy
was cut is kept for its resume, and removed by the first scan after PARTIAL_KEPT_S without one
(a copy that failed and was never started again). Hashes are kept in
``~/.fedhub/workspace-hashes.json`` (0600) by folder, path, size and modification time, so a
rescan reads only the files that changed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from stat import S_ISREG

from ..snapshots.files import sha256_of

HASHES = ".fedhub/workspace-hashes.json"
OWN_FOLDERS = {".ipynb_checkpoints"}  # each server's own (Jupyter's checkpoints): they do not travel
PARTIAL = ".fedhub-partial"  # a file still arriving
PARTIAL_KEPT_S = 7 * 24 * 3600  # how long what arrived of a cut copy waits for the copy to be started again


def _load(cache: Path) -> dict:
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}


def _save(cache: Path, hashes: dict) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = cache.with_name(f".{cache.name}.partial")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(hashes, out)
    os.replace(partial, cache)


def scan(root: Path, home: Path) -> dict:
    """{"files": {path: {"size", "mtime", "sha256"}}, "skipped": [{"path", "reason"}]} for the
    workspace ``root`` (paths relative to it); a missing workspace holds nothing."""
    cache_file = home / HASHES
    every = _load(cache_file)  # {folder: {path: [size, mtime_ns, sha256]}}: each scanned folder its own
    folder_key = root.relative_to(home).as_posix() if root.is_relative_to(home) else str(root)
    cached, hashes = every.get(folder_key, {}), {}
    files, skipped = {}, []
    if not root.is_dir() or root.is_symlink():
        return {"files": files, "skipped": skipped}
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in OWN_FOLDERS]
        _sweep(here, [n for n in names if n.endswith(PARTIAL)])
        names = [n for n in names if not n.endswith(PARTIAL)]
        for name in sorted(dirs):
            if (here / name).is_symlink():
                skipped.append({"path": _shown(here / name, root), "reason": "a link (not followed)"})
        for name in sorted(names):
            path = here / name
            relative = _shown(path, root)
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:
                skipped.append({"path": relative.encode("utf-8", "backslashreplace").decode(),
                                "reason": "a name that is not UTF-8 (rename it to carry it)"})
                continue
            if path.is_symlink():
                skipped.append({"path": relative, "reason": "a link (not followed)"})
                continue
            stat = path.lstat()
            if not path.is_file():
                skipped.append({"path": relative, "reason": "not a plain file"})
                continue
            key = [stat.st_size, stat.st_mtime_ns]
            known = cached.get(relative)
            sha = known[2] if known and known[:2] == key else sha256_of(path)
            hashes[relative] = [*key, sha]
            files[relative] = {"size": stat.st_size, "mtime": stat.st_mtime, "sha256": sha}
    if hashes != cached:
        _save(cache_file, {**every, folder_key: hashes} if hashes else
              {k: v for k, v in every.items() if k != folder_key})
    return {"files": files, "skipped": skipped}


def _sweep(folder: Path, partials: list[str]) -> None:
    """Remove the partials no copy has written to for PARTIAL_KEPT_S (one being written is fresh)."""
    before = time.time() - PARTIAL_KEPT_S
    for name in partials:
        try:
            stat = os.lstat(folder / name)
            if stat.st_mtime < before and S_ISREG(stat.st_mode):
                os.unlink(folder / name)
        except OSError:  # gone meanwhile, or not ours to remove: the next scan tries again
            pass


def known_hashes(home: Path, root: Path):
    """A lookup of the hashes the last scan kept: (path in the workspace, os.stat_result) -> its
    SHA-256, or None when the file changed since (the sender then sends it without one)."""
    key = root.relative_to(home).as_posix() if root.is_relative_to(home) else str(root)
    cached = _load(home / HASHES).get(key, {})

    def known(relative: str, stat: os.stat_result) -> str | None:
        entry = cached.get(relative)
        return entry[2] if entry and entry[:2] == [stat.st_size, stat.st_mtime_ns] else None
    return known


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
