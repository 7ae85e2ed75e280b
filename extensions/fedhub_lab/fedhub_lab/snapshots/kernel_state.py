"""One kernel's variables to a file, and from a file into a new kernel.

The snapshot is the move's (``agent/moves.py``: one cloudpickle, large buffers out of band): the
source hands it out in pieces with their SHA-256 over its shell channel, and the pieces are written
to ``<name>.state`` (0600) beside their manifest. Restoring feeds the pieces, checked again, to a
fresh kernel through the move's comm, and the kernel changes its namespace only when all of it
arrived and unpickled. Nothing here keeps a kernel's bytes in the server's memory beyond a piece
or two.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from ..moves.channel import KernelChannel


class SnapshotError(RuntimeError):
    """A kernel's state could not be written or restored (the message says why)."""


def private_file(path: Path):
    """A new file only its owner can read, whatever the umask."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


async def save_kernel(kernel_manager, snapshot_id: str, path: Path, max_bytes: int = 0) -> dict:
    """Write the kernel's variables to ``path`` (and its manifest to ``path.json``); answer the
    manifest: variables, size, what could not be saved and why. A kernel holding more than
    ``max_bytes`` (0: no cap) is not written: its manifest says so under "too_large"."""
    channel = KernelChannel(kernel_manager, "being saved")
    try:
        manifest = await channel.call_json(channel.agent("pack", snapshot_id))
        if max_bytes and manifest["size"] > max_bytes:
            return {**manifest, "too_large": True}
        pieces: list[str] = []
        with private_file(path) as out:
            asked = channel.ask(channel.agent("chunk", snapshot_id, 0)) if manifest["chunks"] else ""
            for index in range(manifest["chunks"]):
                following = channel.ask(channel.agent("chunk", snapshot_id, index + 1)) \
                    if index + 1 < manifest["chunks"] else ""
                sha, _, encoded = (await channel.value(asked)).partition(":")
                asked = following
                data = base64.b64decode(encoded)
                if hashlib.sha256(data).hexdigest() != sha:
                    raise SnapshotError(f"piece {index} of the kernel's state arrived damaged")
                out.write(data)
                pieces.append(sha)
            out.flush()
            os.fsync(out.fileno())
        manifest["pieces"] = pieces
        with private_file(path.with_suffix(".json")) as out:
            out.write(json.dumps(manifest).encode())
        return manifest
    finally:
        try:
            await channel.call(channel.agent("discard", snapshot_id), timeout=60)
        finally:
            channel.close()


async def restore_kernel(kernel_manager, snapshot_id: str, path: Path, where: str) -> dict:
    """Give a fresh kernel the variables saved in ``path``; all or nothing. Answers the agent's
    word (how many restored) and the names it could not restore (a file missing here)."""
    manifest = json.loads(path.with_suffix(".json").read_bytes())
    channel = KernelChannel(kernel_manager, where)
    try:
        answer = await channel.call_json(channel.agent("receive", snapshot_id, json.dumps(manifest)))
        wrong = [f"{m} is not installed {where}" for m in answer.get("missing_modules", [])]
        wrong += [f"{m['name']} is {m['here']} {where} but was {m['source']}" for m in answer.get("mismatched", [])]
        if wrong:
            raise SnapshotError("the environment differs: " + "; ".join(wrong))
        skipped = [f["name"] for f in answer.get("missing_files", [])]
        channel.open_comm(answer["comm_target"])
        with open(path, "rb") as source:
            for index, sha in enumerate(manifest["pieces"]):
                data = source.read(manifest["chunk_size"])
                if hashlib.sha256(data).hexdigest() != sha:
                    raise SnapshotError(f"{path.name} is damaged at piece {index}")
                channel.send_piece(index, sha, data)
                if index % 4 == 3:
                    await channel.ensure_alive()
        got = await channel.call_json(channel.agent("received", snapshot_id))
        if got["errors"] or got["pieces"] != len(manifest["pieces"]):
            raise SnapshotError(f"{got['pieces']} of {len(manifest['pieces'])} pieces arrived intact")
        result = await channel.call_json(channel.agent("restore", snapshot_id, skipped))
        if "error" in result:
            raise SnapshotError(f"restoring failed: {result['error']}")
        return {**result, "skipped": skipped}
    finally:
        channel.close()
