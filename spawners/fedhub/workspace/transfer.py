"""Files carried from one centre's workspace to another's, as the user's own login at both ends.

The hub starts the workspace agent (``python -m fedhub_lab.workspace``, the notebook
environment's Python beside the centre's ``singleuser_cmd``) through each centre's route: on
the login node over the hub's ssh connection, or as the user's Unix account on a local centre.
The source sends a tar of the named files straight into the target (one pipe between the two
processes the hub started: nothing of it in the hub's memory or on its disk); the target unpacks each file beside its place
and renames it when whole, so a cut leaves nothing half-written. Given each file's SHA-256, the
target keeps what arrived before a cut, and the next carry sends only the rest.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from dataclasses import dataclass

from ..federation import Centre
from ..slurm.routes import route_for

BLOCK = 1 << 20
MOST_SAID = 64 * 1024  # what the hub reads of an agent's answer or complaint (it runs as the user)
MOST_LISTED = 64 * 1024 * 1024  # of a scan's listing or a receiver's hashes (about 400,000 files)


REFUSED = 2  # an agent's exit status when it refuses (a path out of the workspace, a damaged file)


class TransferError(RuntimeError):
    """A transfer that did not complete (the message names the centre and what it said);
    ``resumable`` when the stream was cut rather than refused, so trying again goes on."""

    def __init__(self, message: str, resumable: bool = False):
        super().__init__(message)
        self.resumable = resumable


@dataclass(frozen=True)
class End:
    centre: Centre
    login: str  # the user's login at that centre
    folder: str = ""  # inside the home: the centre's workspace folder unless named (a saved session's)

    @property
    def where(self) -> str:
        return self.folder or self.centre.workspace.folder


async def said(stream, most: int = MOST_SAID) -> bytes:
    """What an agent printed, at most ``most`` bytes kept (the rest is read and dropped, so the
    agent never blocks): the agent runs as the user, who decides what it prints."""
    kept = bytearray()
    while chunk := await stream.read(BLOCK):
        if len(kept) < most:
            kept += chunk[:most - len(kept)]
    return bytes(kept)


MISSING = 127  # the shell's status when the agent's Python is not there


def missing_agent(centre: Centre) -> str:
    """What the user (and the operator, in the log) reads when a centre lacks the notebook
    environment the workspace agent runs in."""
    return (f"{centre.name} has no FedHub notebook environment at {os.path.dirname(centre.singleuser_cmd)} "
            "(the federation file's singleuser_cmd), so your files there cannot be read or written")


def agent_argv(centre: Centre, *args: str) -> list[str]:
    python = os.path.join(os.path.dirname(centre.singleuser_cmd), "python")
    return [python, "-m", "fedhub_lab.workspace", *args]


async def _answered(stdout, progress) -> bytes:
    """The receiver's answer (its last line, at most MOST_LISTED bytes kept), calling
    ``progress(bytes)`` for each "#<bytes>" line before it."""
    kept, pending = bytearray(), b""
    while chunk := await stdout.read(BLOCK):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"#"):
                if progress is not None and line[1:].isdigit():
                    progress(int(line[1:]))
            elif len(kept) <= MOST_LISTED:
                kept += line[:MOST_LISTED + 1 - len(kept)]
        if len(pending) > MOST_LISTED:  # an answer longer than any the hub takes: read on, keep none
            pending, kept = b"", bytearray(b"-")
    return bytes(kept + pending[:MOST_LISTED + 1])


PIPE_SIZE = 1 << 20  # Linux's limit for a user's pipe: fewer, larger hand-overs between the two ssh clients


def _widen(pipe: int) -> None:
    """Let the pipe hold a megabyte instead of 64 kB (where the system allows it)."""
    try:
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, AttributeError):
        pass


async def carry(source: End, target: End, paths: list[str], progress=None, expected: dict | None = None) -> dict:
    """Carry ``paths`` (relative to the workspace) from ``source`` to ``target``; answers
    {"files", "bytes", "sha256", "resumed"} as the target unpacked them. ``progress(bytes_so_far)``
    as the target says its files arrive. ``expected`` ({path: SHA-256}, the source's scan) lets a
    file cut short before resume where it stopped ("resumed": the bytes not sent again).

    The sender's output is the receiver's input, one pipe between the two processes the hub
    started (the ssh clients, or the agents on a local centre): the bytes pass the hub's kernel,
    not its Python, and the hub holds none of them."""
    held = {}
    if expected:
        asked = {p: expected[p] for p in paths if expected.get(p)}
        held = json.loads(await _agent(target, "partials", json.dumps(asked).encode())) if asked else {}
    reading, writing = os.pipe()
    _widen(writing)
    try:
        receiver = await route_for(target.centre.scheduler, target.centre.logins).open(
            agent_argv(target.centre, "receive", target.where, "--progress"), user=target.login, stdin=reading)
        try:
            sender = await route_for(source.centre.scheduler, source.centre.logins).open(
                agent_argv(source.centre, "send", source.where, *(["--resume"] if held else [])),
                user=source.login, stdout=writing)
        except BaseException:
            receiver.kill()
            await receiver.wait()
            raise
    finally:
        os.close(reading)
        os.close(writing)
    errors = [asyncio.ensure_future(said(p.stderr)) for p in (sender, receiver)]
    answer = asyncio.ensure_future(_answered(receiver.stdout, progress))
    resumed = sum(held.values())
    try:
        if held:
            sender.stdin.write(json.dumps({"paths": paths,
                                           "resume": {p: [n, expected[p]] for p, n in held.items()}}).encode())
        else:
            sender.stdin.write("\0".join(paths).encode())
        sender.stdin.close()
        sent, received = await asyncio.gather(sender.wait(), receiver.wait())
        sender_said, receiver_said = [(await e).decode().strip() for e in errors]
        for end, status in ((target, received), (source, sent)):
            if status == MISSING:
                raise TransferError(missing_agent(end.centre))
        if received == REFUSED:  # a damaged file, a path out of the workspace: trying again would not help
            raise TransferError(f"{target.centre.name} could not receive: {receiver_said}")
        if sent != 0 and not (received != 0 and "Broken pipe" in sender_said):
            raise TransferError(f"{source.centre.name} could not send: {sender_said}", sent != REFUSED)
        if received != 0:  # it stopped first (the sender then saw a broken pipe)
            raise TransferError(f"{target.centre.name} could not receive: {receiver_said}", True)
        try:
            result = {**json.loads(await answer), "resumed": resumed}
        except (ValueError, TypeError):
            raise TransferError(f"{target.centre.name} answered the copy with something else (or more than the "
                                "hub reads); the files that arrived whole are kept") from None
        if progress is not None:
            progress(result.get("bytes", 0))  # the last lines come at most five a second
        return result
    except BaseException:
        for process in (sender, receiver):
            if process.returncode is None:
                process.kill()
                await process.wait()
        raise
    finally:
        for task in (*errors, answer):
            task.cancel()


async def _agent(end: End, command: str, stdin: bytes, most: int = MOST_SAID) -> bytes:
    """Run one agent command at ``end`` with ``stdin``; answers what it printed (at most ``most``)."""
    process = await route_for(end.centre.scheduler, end.centre.logins).open(
        agent_argv(end.centre, command, end.where), user=end.login)
    try:
        process.stdin.write(stdin)
        process.stdin.close()
        out, err = await asyncio.gather(said(process.stdout, most), said(process.stderr))
        await process.wait()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode == MISSING:
        raise TransferError(missing_agent(end.centre))
    if process.returncode != 0:
        verb = {"scan": "list", "arrange": "arrange"}.get(command, "resume a transfer into")
        raise TransferError(f"{end.centre.name} could not {verb} your workspace: {err.decode().strip()}")
    return out


async def scan(end: End, skipped: list | None = None) -> dict:
    """The workspace at ``end``: {path: {"size", "mtime", "sha256"}} (links and names it cannot
    carry are left out by the agent, and added to ``skipped`` as {"path", "reason"} when given)."""
    out = await _agent(end, "scan", b"", MOST_LISTED + 1)
    if len(out) > MOST_LISTED:
        raise TransferError(f"your workspace at {end.centre.name} lists more files than a transfer takes; "
                            "move a folder of it at a time")
    try:
        listing = json.loads(out)
        if skipped is not None:
            skipped.extend(s for s in listing.get("skipped", []) if isinstance(s, dict))
        return listing["files"]
    except (ValueError, KeyError, TypeError):
        raise TransferError(f"{end.centre.name} answered the workspace listing with something else") from None


async def arrange(end: End, renames: list[tuple[str, str]] = (), deletes: list[str] = ()) -> dict:
    """Rename (a version set aside) and delete (gone elsewhere) files in the workspace at ``end``."""
    asked = json.dumps({"rename": [list(r) for r in renames], "delete": list(deletes)}).encode()
    try:
        return json.loads(await _agent(end, "arrange", asked))
    except ValueError:
        raise TransferError(f"{end.centre.name} answered with something else") from None


async def forget(end: End, expected: dict) -> None:
    """Remove at ``end`` what arrived of ``expected``'s files before a cut (after a cancel)."""
    if expected:
        await _agent(end, "forget", json.dumps(expected).encode())
