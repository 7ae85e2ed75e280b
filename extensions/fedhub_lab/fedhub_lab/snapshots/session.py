"""A notebook server's whole session, saved to its user's home and restored in another server.

    ~/.fedhub/sessions/<id>/        (0700)
        session.json                which document uses which kernel, each kernel's spec and
                                    what it held; when and where it was saved
        <n>.state, <n>.json         kernel n's variables and their manifest (0600)

Saving never changes the running session: every kernel keeps running with its variables.
Restoring starts one kernel per saved kernel, gives each its variables, and only then opens the
documents' sessions on them; if any kernel cannot be restored, the ones already started are
shut down and nothing of the session is opened.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from ..moves.channel import KernelChannel
from ..moves.mover import unmovable_of
from .kernel_state import SnapshotError, private_file, restore_kernel, save_kernel

SESSIONS_DIR = ".fedhub/sessions"
WORKSPACES_DIR = ".jupyter/lab/workspaces"
_ID = re.compile(r"[0-9a-f]{8,32}")


def home() -> Path:
    return Path(os.path.expanduser("~"))


def session_dir(snapshot_id: str) -> Path:
    if not _ID.fullmatch(snapshot_id):
        raise SnapshotError(f"id: {snapshot_id!r} is not a session snapshot's id (8-32 hex digits)")
    return home() / SESSIONS_DIR / snapshot_id


def _document_path(serverapp, session_path: str) -> str:
    """A session's document as a home-relative path ("" when it lies outside the home)."""
    full = Path(serverapp.root_dir, session_path).resolve()
    return str(full.relative_to(home().resolve())) if full.is_relative_to(home().resolve()) else ""


async def save_session(serverapp, snapshot_id: str, centre: str = "", max_bytes: int = 0,
                       again: bool = False) -> dict:
    """Write every running kernel's variables and the sessions that use them; answer the record.
    A kernel holding more than ``max_bytes`` is listed, not saved (its notebook reopens with a
    fresh kernel). ``again``: bring an earlier save of the same id up to date (a continue saves
    while the new job waits, then again before the switch): a kernel that ran no cell since
    keeps its saved state, any other is saved anew, and the documents are listed again."""
    folder = session_dir(snapshot_id)
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(mode=0o700, exist_ok=again)
    earlier = {}
    if again and (folder / "session.json").is_file():
        earlier = {k["id"]: k for k in json.loads((folder / "session.json").read_bytes())["kernels"]}
    started = time.monotonic()
    kernels, by_old, skipped = [], {}, []
    taken = {k["n"] for k in earlier.values()}
    fresh = (n for n in range(10 ** 6) if n not in taken)
    for kernel_id in list(serverapp.kernel_manager.list_kernel_ids()):
        manager = serverapp.kernel_manager.get_kernel(kernel_id)
        before = earlier.get(kernel_id)
        if before is not None and await _execution_count(manager) == before["execution_count"]:
            by_old[kernel_id] = before["n"]
            kernels.append(before)
            continue
        n = next(fresh)
        manifest = await save_kernel(manager, snapshot_id, folder / f"{n}.state", max_bytes)
        if manifest.get("too_large"):
            skipped.append({"id": kernel_id, "name": manager.kernel_name, "size": manifest["size"],
                            "reason": f"{manifest['size'] / 2**20:.0f} MB of variables, over the "
                                      f"{max_bytes / 2**20:.0f} MB a snapshot may hold"})
            continue
        by_old[kernel_id] = n
        kernels.append({"n": n, "id": kernel_id, "name": manager.kernel_name, "variables": len(manifest["variables"]),
                        "size": manifest["size"], "execution_count": manifest["execution_count"],
                        "unmovable": unmovable_of(manifest)})
    sessions = []
    for s in await serverapp.session_manager.list_sessions():
        kernel = (s.get("kernel") or {}).get("id")
        if kernel in by_old:
            sessions.append({"path": s["path"], "name": s.get("name") or "", "type": s.get("type") or "",
                             "kernel": by_old[kernel], "document": _document_path(serverapp, s["path"])})
    record = {"id": snapshot_id, "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "centre": centre, "kernels": kernels, "sessions": sessions, "not_saved": skipped,
              "seconds": round(time.monotonic() - started, 3)}
    with private_file(folder / "session.json") as out:
        out.write(json.dumps(record, indent=1).encode())
    return record


async def _execution_count(manager) -> int:
    channel = KernelChannel(manager, "being saved")
    try:
        return int(await channel.call("get_ipython().execution_count", timeout=30))
    finally:
        channel.close()


def read_session(snapshot_id: str) -> dict:
    path = session_dir(snapshot_id) / "session.json"
    if not path.is_file():
        raise FileNotFoundError(f"no session snapshot {snapshot_id} in {path.parent.parent}")
    return json.loads(path.read_bytes())


def carried_paths(record: dict) -> tuple[list[str], list[str]]:
    """What a session needs at another centre: its documents, and the folders of its snapshot
    and of the lab's workspaces (its layout)."""
    documents = [s["document"] for s in record["sessions"] if s["document"]]
    return documents, [f"{SESSIONS_DIR}/{record['id']}", WORKSPACES_DIR]


async def restore_session(serverapp, snapshot_id: str, where: str) -> dict:
    """Start the saved kernels with their variables, then open the documents' sessions on them.
    Every kernel comes back beside this server (its default kernel): the session continues at
    this server's centre, and a kernel the lab's dialog made for another server's options, or
    at a third centre, is not known here."""
    record = read_session(snapshot_id)
    folder = session_dir(snapshot_id)
    km, started, restored = serverapp.kernel_manager, {}, []
    try:
        for k in record["kernels"]:
            spec = km.default_kernel_name
            new_id = await km.start_kernel(kernel_name=spec)
            started[k["n"]] = new_id
            result = await restore_kernel(km.get_kernel(new_id), snapshot_id, folder / f"{k['n']}.state", where)
            restored.append({"id": k["id"], "new_id": new_id, "name": spec, "variables": result["restored"],
                             "skipped": result["skipped"]})
        for s in record["sessions"]:
            await serverapp.session_manager.create_session(path=s["path"], name=s["name"], type=s["type"],
                                                           kernel_id=started[s["kernel"]])
    except BaseException:
        for new_id in started.values():
            try:
                await km.shutdown_kernel(new_id)
            except Exception:  # noqa: BLE001 - the next one must still end
                pass
        raise
    return {"id": snapshot_id, "kernels": restored, "sessions": len(record["sessions"])}


async def end_session(serverapp, snapshot_id: str) -> int:
    """The session continues elsewhere: shut every kernel down (a kernel at a centre, its job
    too). Refused, with nothing ended, when a cell ran in a kernel after it was saved: its
    results would be lost."""
    record = read_session(snapshot_id)
    km = serverapp.kernel_manager
    for k in record["kernels"]:
        if k["id"] not in km:
            continue
        channel = KernelChannel(km.get_kernel(k["id"]), "being ended")
        try:
            now = int(await channel.call("get_ipython().execution_count", timeout=30))
        finally:
            channel.close()
        if now != k["execution_count"]:
            raise SnapshotError("a cell ran after the session was saved; nothing was ended (continue again to "
                                "take its results along)")
    ids = list(km.list_kernel_ids())
    for kernel_id in ids:
        await km.shutdown_kernel(kernel_id)
    return len(ids)
