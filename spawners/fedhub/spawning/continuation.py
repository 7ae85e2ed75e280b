"""Continue a running session at another centre: the same server, a new job there, the same lab.

    queued     the successor's job at the target (``successor.py``: the spawn's own launch and,
               for "auto", its placement), Slurm's words while it waits; the old server runs on
    copying    the old server saves every kernel's variables to the user's home; the files the
               session needs (its documents and their folders, the snapshot, the lab's layout)
               travel to the new server's home, only those it lacks (none where homes are shared)
    moving     the new server starts the kernels with their variables and opens the documents'
               sessions on them
    switching  the old server ends its kernels (refused if a cell ran since the save); the
               successor becomes the server (spawner, database, proxy route); the old job ends
    done       the user's URL now reaches the new server, which reopens the same workspace

Before the switch nothing of the old session changes: any failure or a cancel cancels the
successor's job and leaves the old server as it was. Each continuation is held in the hub's
runtime under its id; ``public()`` is what the REST API shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .. import runtime
from ..i18n import _, format_number
from ..request import AUTO, SpawnRequest
from .server_calls import ContinueError, ServerCalls, said as _said
from .successor import Successor, take_over

log = logging.getLogger("JupyterHub.fedhub.continue")

QUEUED, COPYING, MOVING, SWITCHING = "queued", "copying", "moving", "switching"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
KEPT_S = 3600  # a finished continuation's record stays readable this long
PIECES_IN_FLIGHT = 8


def continuations() -> dict:
    return runtime.current().continuations


@dataclass
class Continuation:
    id: str
    user: str
    server: str
    centre: str               # as asked: a centre's id or "auto"
    source_centre: str
    status: str = QUEUED
    phase: str = QUEUED
    message: str = ""
    centre_name: str = ""     # where it continues, once known
    job_id: str = ""
    server_url: str = ""
    kernels: list = field(default_factory=list)
    files: dict = field(default_factory=lambda: {"count": 0, "bytes": 0})
    reason: str = ""
    started: float = field(default_factory=time.time)
    ended: float = 0.0
    phases: list = field(default_factory=list)

    def public(self) -> dict:
        return {"id": self.id, "user": self.user, "server": self.server, "status": self.status, "phase": self.phase,
                "message": self.message, "centre": self.centre, "centre_name": self.centre_name,
                "source_centre": self.source_centre, "job_id": self.job_id, "server_url": self.server_url,
                "kernels": self.kernels, "files": self.files, "reason": self.reason, "phases": self.phases}

    def enter(self, phase: str, message: str) -> None:
        if self.phases and self.phases[-1]["phase"] == phase:
            self.phases[-1]["message"] = message
        else:
            self.phases.append({"phase": phase, "message": message, "at": round(time.time() - self.started, 3)})
        if self.status not in FINISHED:
            self.status = phase if phase in (QUEUED, COPYING, MOVING, SWITCHING) else self.status
        self.phase, self.message = phase, message
        log.info("[%s/%s] continue %s: %s", self.user, self.server or "-", self.id, message)


async def carry_files(source: ServerCalls, target: ServerCalls, paths: list[str]) -> dict:
    """Stream the files as a tar from the old server's home to the new one's, through the hub,
    a few pieces at a time (nothing lands on the hub's disk)."""
    pieces: asyncio.Queue = asyncio.Queue(PIECES_IN_FLIGHT)
    moved = {"bytes": 0}

    async def fill(piece: bytes):
        moved["bytes"] += len(piece)
        await pieces.put(piece)

    async def produce(write):
        while (piece := await pieces.get()) is not None:
            await write(piece)

    def arriving(piece: bytes):
        asyncio.ensure_future(fill(piece))

    client = AsyncHTTPClient()
    fetching = asyncio.ensure_future(client.fetch(source.request("files", "POST", {"paths": paths},
                                                                 streaming_callback=arriving)))
    sending = asyncio.ensure_future(client.fetch(target.request("files", "PUT", None, body_producer=produce,
                                                                allow_nonstandard_methods=True)))
    try:
        await fetching
        await asyncio.sleep(0)  # the last piece's put
        await pieces.put(None)
        answer = json.loads((await sending).body)
    except HTTPClientError as e:
        raise ContinueError(f"copying the session's files failed: {_said(e)}") from None
    finally:
        for task in (fetching, sending):
            task.cancel()
    return {"count": answer["files"], "bytes": answer["bytes"]}


class ContinueRun:
    """One continuation's work (the spawner of the server that moves on)."""

    def __init__(self, spawner, record: Continuation, request: SpawnRequest):
        self.spawner, self.record, self.request = spawner, record, request
        self.successor = Successor(spawner, request.centre)
        self.switched = False

    async def run(self) -> None:
        record, spawner, successor = self.record, self.spawner, self.successor
        spawner.continuing = self
        old = ServerCalls(spawner, spawner.ip, spawner.port)
        # the kernels' variables are saved while the new job waits and starts (the user works on;
        # _copy saves again only the kernels that ran a cell since)
        early = asyncio.ensure_future(old.call("save", {"id": record.id, "centre": record.source_centre}))
        try:
            try:
                await self._queue()
            except BaseException:
                early.cancel()
                await asyncio.gather(early, return_exceptions=True)
                raise
            (early_failure,) = await asyncio.gather(early, return_exceptions=True)
            if isinstance(early_failure, BaseException):
                log.info("[%s] continue %s: the save while queued did not finish (%s); saving now", record.user,
                         record.id, early_failure)
            new = ServerCalls(spawner, successor.ip, successor.port)
            saved = await self._copy(old, new)
            await self._move(new, saved)
            await self._switch(old, saved)
            record.status = DONE
            record.enter(DONE, _("Continued at {centre}: job {job}; the old job at {old} ended").format(
                centre=record.centre_name, job=record.job_id, old=spawner.federation.centre(record.source_centre).name))
        except asyncio.CancelledError:
            record.reason = record.reason or "cancelled"
            await self._roll_back(CANCELLED, _("Cancelled; the session runs on at the old centre"))
        except Exception as e:  # noqa: BLE001 - whatever broke, the old session must run on
            if not isinstance(e, ContinueError):
                log.exception("[%s] continue %s failed", record.user, record.id)
            record.reason = str(e) or type(e).__name__
            await self._roll_back(FAILED, _("Could not continue: {problem}. The session runs on where it was").format(
                problem=record.reason))
        finally:
            spawner.continuing = None
            record.ended = time.time()

    async def _queue(self) -> None:
        record, successor = self.record, self.successor
        if self.request.centre == AUTO:
            record.enter(QUEUED, _("Starting your server at the soonest centre"))
        else:
            record.enter(QUEUED, _("Starting your server at {centre}").format(
                centre=self.spawner.federation.centre(self.request.centre).name))
        start = asyncio.ensure_future(successor.start(self.request, self.spawner.check_allocation))
        try:
            while not start.done():
                await asyncio.wait([start], timeout=0.5)
                if successor.job is not None:
                    record.centre_name, record.job_id = successor.job.centre.name, successor.job.job_id
                said = successor.message()
                if said and said != record.message:
                    record.enter(QUEUED, said)
            start.result()
        except BaseException:
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
            raise
        record.centre_name, record.job_id = successor.job.centre.name, successor.job.job_id

    async def _copy(self, old: ServerCalls, new: ServerCalls) -> dict:
        record = self.record
        record.enter(COPYING, _("Saving your kernels' variables"))
        saved = await old.call("save", {"id": record.id, "centre": record.source_centre, "again": True})
        record.kernels = [{"id": k["id"], "variables": k["variables"], "size": k["size"],
                           "unmovable": k["unmovable"]} for k in saved["kernels"]]
        lacking = (await new.call("lacking", {"files": saved["files"]}))["paths"]
        size = sum(f["size"] for f in saved["files"] if f["path"] in set(lacking))
        record.enter(COPYING, _("Copying {files} files ({size} MB) to {centre}").format(
            files=len(lacking), size=format_number(size / 1e6), centre=record.centre_name)
                     if lacking else _("{centre} already has your files").format(centre=record.centre_name))
        if lacking:
            record.files = await carry_files(old, new, lacking)
        return saved

    async def _move(self, new: ServerCalls, saved: dict) -> None:
        record = self.record
        record.enter(MOVING, _("Restoring {kernels} kernels at {centre}").format(kernels=len(saved["kernels"]),
                                                                                  centre=record.centre_name))
        restored = await new.call("restore", {"id": record.id, "where": f"at {record.centre_name}"})
        by_old = {k["id"]: k for k in restored["kernels"]}
        for k in record.kernels:
            k.update({"new_id": by_old[k["id"]]["new_id"], "restored": by_old[k["id"]]["variables"],
                      "skipped": by_old[k["id"]]["skipped"]})

    async def _switch(self, old: ServerCalls, saved: dict) -> None:
        record, spawner, successor = self.record, self.spawner, self.successor
        record.enter(SWITCHING, _("Switching to {centre}").format(centre=record.centre_name))
        await old.call("end", {"id": record.id}, timeout=120)
        await spawner.kernels.stop_all()  # what the old server started at centres, if it could not
        spawner.kernels.accepting = True
        old_job, old_tunnel = await take_over(spawner, successor)
        self.switched = True
        record.server_url = spawner.server.base_url
        log.info("[%s/%s] continue %s: now job %s at %s; cancelling job %s at %s", record.user, record.server or "-",
                 record.id, record.job_id, record.centre_name, old_job.job_id, old_job.centre.name)
        await end_old_job(spawner, old_job, old_tunnel)
        # what the user changed at the old centre until the switch is recorded (as at a stop)
        spawner.workspace.record_soon(old_job.centre, old_job.login)

    async def _roll_back(self, status: str, message: str) -> None:
        record = self.record
        if not self.switched:
            record.enter("rolling back", _("Cancelling the job at {centre}").format(centre=record.centre_name)
                         if record.centre_name else _("Cancelling the job at the target"))
            try:
                await asyncio.shield(self.successor.give_up())
            except Exception:  # noqa: BLE001 - owed to the backlog; the log says so
                log.exception("[%s] continue %s: cancelling the successor failed", record.user, record.id)
        record.status = status
        record.enter(status, message)


async def end_old_job(spawner, job, tunnel) -> None:
    from ..slurm.tunnels import CentreTunnel
    outcome = await job.cancel(spawner.stop_confirm_timeout)
    if outcome == "owed":
        log.error("[%s] the old job %s at %s could not be cancelled yet: owed until it answers", spawner.user.name,
                  job.job_id, job.centre.name)
    if tunnel is not None:
        await CentreTunnel(job.centre).close_server(tunnel["node"], tunnel["port"], tunnel["local_port"])


def begin(spawner, request: SpawnRequest) -> Continuation:
    """Start continuing ``spawner``'s running server with ``request``; answers its record."""
    for cid, c in list(continuations().items()):
        if c.status in FINISHED and time.time() - c.ended > KEPT_S:
            del continuations()[cid]
            runtime.current().continue_tasks.pop(cid, None)
    record = Continuation(secrets.token_hex(8), spawner.user.name, spawner.name or "", request.centre,
                          spawner.job.centre.id)
    continuations()[record.id] = record
    run = ContinueRun(spawner, record, request)
    runtime.current().continue_tasks[record.id] = asyncio.ensure_future(run.run())
    return record


def cancel(record: Continuation) -> bool:
    """Cancel a continuation before its switch; answers whether it was (False once switching)."""
    task = runtime.current().continue_tasks.get(record.id)
    if record.status in FINISHED or record.status == SWITCHING or task is None or task.done():
        return False
    task.cancel()
    return True


def url_of(hub_base: str, record: Continuation) -> str:
    return f"{hub_base}api/fedhub/users/{quote(record.user, safe='')}/continues/{record.id}"
