"""Handing out a folder of notebooks to every student's server, and collecting their copies back
into the teacher's server (``collected/<folder>/<student>/``), without a shared filesystem: the
files travel through the servers' contents API, at whichever centre each server runs.

A hand-out is kept by the class service (its state directory), so students whose server starts
later receive it when it runs; a student's own copy is never overwritten. A collection waits
for a stopped server in the same way, and is made when it next runs.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import quote

from ..statedir import ensure_state_dir, write_private_json
from .bulk import HubCaller

log = logging.getLogger("fedhub.classes")
FOLDER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_. -]{0,63}){0,3}")
MAX_BYTES = 50 * 1024 * 1024  # a hand-out is teaching material, not a data set
MAX_FILES = 500
# A server is its user's: it may answer anything. These bound a walk of a server that lists a
# folder inside itself, or a tree built to exhaust the courier.
MAX_DEPTH = 16
MAX_FOLDERS = 200


class MaterialsError(ValueError):
    """A hand-out or collection that cannot be made; the message says why and what to do."""


def check_folder(folder) -> str:
    if not isinstance(folder, str) or not FOLDER_RE.fullmatch(folder) or ".." in folder.split("/"):
        raise MaterialsError("folder: give a folder of your server by its path, e.g. 'day1' or 'week2/lab'")
    return folder


def safe_name(name) -> str:
    """One entry's name as a server reported it, refused unless it is a plain name: no separator,
    no '.' or '..', nothing a path could be built from that leaves its folder."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or len(name.encode()) > 255):
        raise MaterialsError(f"the server listed an entry named {name!r}, which is not a plain file name; "
                             "it was not copied")
    return name


def safe_relative(path) -> str:
    """A path inside a folder (``a/b.ipynb``), refused unless every part is a plain name."""
    if not isinstance(path, str):
        raise MaterialsError(f"path {path!r} is not a path inside the folder")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH + 1:
        raise MaterialsError(f"path {path!r} is deeper than {MAX_DEPTH} folders")
    for part in parts:
        safe_name(part)
    return path


class ServerFiles:
    """One running server's files, through its contents API (the hub's proxy or its own address)."""

    def __init__(self, server_url: str, token: str):
        self.api = HubCaller(server_url.rstrip("/") + "/api/contents", token)
        self.refused: list[str] = []  # entries a walk left out, with why

    async def get(self, path: str) -> dict | None:
        status, answer, _ = await self.api.call("GET", f"/{quote(path)}?content=1")
        return answer if status == 200 else None

    async def tree(self, folder: str) -> list[dict]:
        """Every file under ``folder`` with its content (``path`` relative to the folder).

        Paths are built here from the entries' names, never taken from what the server reports
        (a hostile server may report ``day1/../bob/x``); the walk is bounded in depth, folders
        and files, so a server that lists a folder inside itself cannot hold the courier."""
        found, size, folders = [], 0, 0
        pending = [""]  # relative to the folder
        while pending:
            current = pending.pop()
            folders += 1
            if folders > MAX_FOLDERS:
                raise MaterialsError(f"{folder!r} holds more than {MAX_FOLDERS} folders; hand out a smaller folder")
            model = await self.get(f"{folder}/{current}".rstrip("/"))
            if model is None:
                if not current:
                    raise MaterialsError(f"there is no folder {folder!r} in the server")
                continue
            if model.get("type") != "directory":
                raise MaterialsError(f"{folder!r} is a file; hand out a folder")
            entries = model.get("content")
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict):
                    continue
                try:
                    child = f"{current}/{safe_name(entry.get('name'))}".lstrip("/")
                except MaterialsError as e:
                    self.refused.append(str(e))
                    continue
                if child.count("/") >= MAX_DEPTH:
                    self.refused.append(f"{folder}/{child} is deeper than {MAX_DEPTH} folders; it was not copied")
                    continue
                if entry.get("type") == "directory":
                    pending.append(child)
                    continue
                item = await self.get(f"{folder}/{child}")
                if item is None or item.get("type") not in ("file", "notebook"):
                    continue
                size += len(json.dumps(item.get("content")))
                if size > MAX_BYTES or len(found) >= MAX_FILES:
                    raise MaterialsError(f"{folder!r} holds more than {MAX_FILES} files or "
                                         f"{MAX_BYTES // 2**20} MB; hand out a smaller folder")
                found.append({"path": child, "type": item["type"], "format": item.get("format"),
                              "content": item.get("content")})
        return found

    async def put_tree(self, folder: str, files: list[dict], overwrite: bool) -> tuple[int, int]:
        """Write ``files`` under ``folder``; (written, kept because the server already has them)."""
        made: set[str] = set()
        written = kept = 0
        for item in files:
            path = f"{folder}/{safe_relative(item['path'])}"
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    status, _, _ = await self.api.call("PUT", f"/{quote(directory)}", {"type": "directory"})
                    if status not in (200, 201):
                        raise MaterialsError(f"could not make {directory!r} ({status})")
                    made.add(directory)
            if not overwrite and await self.get(path) is not None:
                kept += 1
                continue
            body = {"type": item["type"], "format": item["format"], "content": item["content"]}
            status, answer, _ = await self.api.call("PUT", f"/{quote(path)}", body)
            if status not in (200, 201):
                raise MaterialsError(f"could not write {path!r} ({status}: {answer.get('message', '')})")
            written += 1
        return written, kept


class ClassMaterials:
    """What was handed out and asked for in one class, and to or from whom it still must go."""

    def __init__(self, state_dir: Path, class_name: str):
        self.path = state_dir / f"{class_name}.json"
        try:
            self.state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.state = {"handouts": {}, "collections": {}}

    def save(self) -> None:
        ensure_state_dir(str(self.path.parent))
        write_private_json(self.path, self.state)

    def add_handout(self, folder: str, files: list[dict], by: str) -> None:
        self.state["handouts"][folder] = {"by": by, "files": files, "done": []}
        self.save()

    def add_collection(self, folder: str, teacher: str) -> None:
        self.state["collections"][folder] = {"teacher": teacher, "done": []}
        self.save()

    def owed(self, student: str) -> list[tuple[str, str]]:
        """("handout" | "collection", folder) still to be made for ``student``."""
        return [("handout", f) for f, h in self.state["handouts"].items() if student not in h["done"]] + \
            [("collection", f) for f, c in self.state["collections"].items() if student not in c["done"]]

    def done(self, kind: str, folder: str, student: str) -> None:
        entry = self.state["handouts" if kind == "handout" else "collections"][folder]
        if student not in entry["done"]:
            entry["done"].append(student)
        self.save()

    def summary(self, student: str) -> str:
        got = [f for f, h in self.state["handouts"].items() if student in h["done"]]
        waiting = [f"{kind} {folder}" for kind, folder in self.owed(student)]
        collected = [f for f, c in self.state["collections"].items() if student in c["done"]]
        parts = []
        if got:
            parts.append("has " + ", ".join(got))
        if collected:
            parts.append("collected " + ", ".join(collected))
        if waiting:
            parts.append("waiting: " + ", ".join(waiting))
        return "; ".join(parts)


async def deliver(materials: ClassMaterials, student: str, student_url: str, teacher_urls: dict[str, str],
                  token_for) -> list[str]:
    """Make whatever ``materials`` still owe a running student's server; what was made, in words.
    ``token_for(user)`` gives the token for that user's own server (each server gets only its own)."""
    made = []
    server = ServerFiles(student_url, await token_for(student))
    for kind, folder in materials.owed(student):
        if kind == "handout":
            written, kept = await server.put_tree(folder, materials.state["handouts"][folder]["files"], overwrite=False)
            made.append(f"{folder} handed out to {student} ({written} files" + (f", {kept} of theirs kept)" if kept else ")"))
        else:
            teacher = materials.state["collections"][folder]["teacher"]
            if teacher not in teacher_urls:
                continue  # the teacher's server is not running: collected when it is
            try:
                files = await server.tree(folder)
            except MaterialsError as e:
                files = []  # nothing of theirs to collect: recorded as collected (empty)
                server.refused.append(str(e))
            for why in server.refused:
                log.warning("Class %s, collecting %s from %s: %s", materials.path.stem, folder, student, why)
            await ServerFiles(teacher_urls[teacher], await token_for(teacher)).put_tree(
                f"collected/{folder}/{safe_name(student)}", files, overwrite=True)
            made.append(f"{folder} collected from {student} ({len(files)} files)")
        materials.done(kind, folder, student)
    for line in made:
        log.info("Class %s: %s", materials.path.stem, line)
    return made
