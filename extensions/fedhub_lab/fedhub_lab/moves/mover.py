"""Moving a running kernel, with its variables, to a kernel at another centre.

One ``Move`` runs in the notebook server, which owns both kernels (so only their user can move
them). Its phases are real events: the target kernel's job queued (Slurm's words), the source's
variables saved (how many, how large), the pieces copied (bytes done / total), restored, switched.
Until the switch nothing of the source changes; any failure or a cancel before the switch ends
the target kernel (its job is cancelled) and drops the snapshot on both sides, so the source runs
on as it was. A cell run at the source after the snapshot stops the switch for the same reason.
A file open for reading in the user's workspace that the target lacks is copied there first (the
hub's transfer, as the user at both centres), so it is reopened at its position; one outside the
workspace is listed as unmovable.
After the switch every session (notebook, console) of the source kernel uses the new one, and
the source kernel is shut down (its job ends).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import posixpath
import re
import time
import uuid
from dataclasses import dataclass, field

from ..provisioner.hub_client import HubKernelError, HubKernels
from ..provisioner.provisioner import hub_status
from ..provisioner.specs import spec_for_request
from .channel import ChannelError, KernelChannel

log = logging.getLogger("ServerApp.fedhub.moves")  # in the server's log, beside its own lines

RUNNING, CHOOSING, SWITCHED, FAILED, CANCELLED = "running", "choosing", "switched", "failed", "cancelled"
UNMOVABLE_CHOICES = ("ask", "switch", "cancel")


class MoveError(Exception):
    """Why a move stopped; the source kernel is untouched."""


def unmovable_of(manifest: dict) -> list[dict]:
    """What will not move, each with its English reason and, where the kernel gave one, the code
    (and detail) the lab words in the user's language (an older agent gives none)."""
    codes = manifest.get("why") or {}
    return [{"name": n, "reason": r, **({"code": codes[n][0], "detail": codes[n][1]} if n in codes else {})}
            for n, r in sorted(manifest["unmovable"].items())]


@dataclass
class Move:
    id: str
    kernel_id: str
    options: dict
    on_unmovable: str = "ask"
    heartbeat: float = 0.0        # seconds without a GET after which the move is given up (0: never)
    status: str = RUNNING
    phase: str = "starting"
    message: str = ""
    done: int = 0
    total: int = 0
    variables: int = 0
    unmovable: list[dict] = field(default_factory=list)
    new_kernel_id: str = ""
    centre: str = ""
    error: str = ""
    skip_files: list[str] = field(default_factory=list)  # files whose path the target lacks (listed)
    saved_in: float = 0.0         # seconds the snapshot took (while the target started)
    target_kernel_id: str = ""    # the kernel being started at the target (the lab's move notice shows its wait)
    spec: str = ""                # the target's kernelspec (checked by the hub)
    started: float = field(default_factory=time.time)
    seen: float = field(default_factory=time.monotonic)
    phases: list[dict] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the message as [sentence, values...], for the lab to translate

    def public(self) -> dict:
        return {"id": self.id, "kernel_id": self.kernel_id, "status": self.status, "phase": self.phase,
                "message": self.message, "progress": {"done": self.done, "total": self.total},
                "variables": self.variables, "unmovable": self.unmovable, "new_kernel_id": self.new_kernel_id,
                "centre": self.centre, "error": self.error, "phases": self.phases,
                "saved_in": round(self.saved_in, 3), "words": self.words}

    def enter(self, phase: str, message: str, *values) -> None:
        """Enter ``phase``, saying ``message``: with ``values``, a sentence of the lab's catalogue
        (marked ``N_``) whose %1, %2... they fill; the lab shows it in the user's language."""
        self.words = [message, *map(str, values)] if values else []
        if values:
            message = _fill(message, self.words[1:])
        now = time.time()
        if self.phases and self.phases[-1]["phase"] == phase:
            self.phases[-1]["message"] = message
        else:
            self.phases.append({"phase": phase, "message": message, "at": round(now - self.started, 3)})
        self.phase, self.message = phase, message
        log.info("Move %s of kernel %s: %s", self.id, self.kernel_id, message)


def N_(sentence: str) -> str:
    """Marks a sentence for the lab's catalogue (extensions/fedhub_lab/babel.cfg reads this module)."""
    return sentence


def _fill(sentence: str, values: list[str]) -> str:
    return re.sub(r"%(\d)", lambda m: values[int(m.group(1)) - 1], sentence)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class Movers:
    """The server's moves, by id."""

    def __init__(self, serverapp):
        self.app = serverapp
        self.moves: dict[str, Move] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.choices: dict[str, asyncio.Future] = {}

    async def start(self, kernel_id: str, options: dict, on_unmovable: str = "ask", heartbeat: float = 0.0) -> Move:
        """Check the request (the hub checks the target's resources as for a spawn: nothing is
        started when they are wrong), then run the move in the background."""
        if kernel_id not in self.app.kernel_manager:
            raise KeyError(f"no kernel {kernel_id} on this server")
        if any(m.kernel_id == kernel_id and m.status in (RUNNING, CHOOSING) for m in self.moves.values()):
            raise ValueError(f"kernel {kernel_id} is already being moved")
        if on_unmovable not in UNMOVABLE_CHOICES:
            raise ValueError(f"on_unmovable: one of {', '.join(UNMOVABLE_CHOICES)}, not {on_unmovable!r}")
        options = {k: v for k, v in options.items() if v not in (None, "")}
        spec = await spec_for_request(HubKernels(), self.app.kernel_spec_manager, options)  # HubKernelError
        move = Move(uuid.uuid4().hex[:16], kernel_id, options, on_unmovable, heartbeat)
        move.spec = spec
        move.centre = self.app.kernel_spec_manager.get_kernel_spec(spec).metadata["fedhub"]["centre_name"]
        self.moves[move.id] = move
        self.tasks[move.id] = asyncio.ensure_future(self._run(move))
        return move

    def targets(self) -> set[str]:
        """The kernels that unfinished moves are starting (their wait is shown by the move)."""
        return {m.target_kernel_id for m in self.moves.values() if m.status in (RUNNING, CHOOSING)}

    def get(self, move_id: str) -> Move:
        move = self.moves[move_id]
        move.seen = time.monotonic()
        return move

    def choose(self, move_id: str, switch: bool) -> Move:
        move = self.moves[move_id]
        future = self.choices.get(move_id)
        if move.status != CHOOSING or future is None or future.done():
            raise ValueError(f"move {move_id} is not waiting for a choice (it is {move.status})")
        future.set_result(switch)
        return move

    def cancel(self, move_id: str) -> Move:
        move = self.moves[move_id]
        task = self.tasks.get(move_id)
        if move.status in (RUNNING, CHOOSING) and task is not None and not task.done():
            if move.phase in ("switching",):
                raise ValueError("the move is switching; it can no longer be cancelled")
            task.cancel()
        return move

    # ------------------------------------------------------------------ the move

    async def _run(self, move: Move) -> None:
        target_id, source, target = None, None, None
        watchdog = asyncio.ensure_future(self._watch_heartbeat(move)) if move.heartbeat else None
        outcome = (SWITCHED, "switched", "")
        try:
            source = KernelChannel(self.app.kernel_manager.get_kernel(move.kernel_id), "at the source")
            starting = asyncio.ensure_future(self._start_target(move))
            try:  # the snapshot is made while the target's job starts (a later cell stops the switch)
                manifest = await self._save(move, source)
                target_id = await starting
            except BaseException:
                if starting.done() and not starting.cancelled() and starting.exception() is None:
                    target_id = starting.result()  # started after all: it goes in the clean-up
                else:
                    starting.cancel()
                    await asyncio.gather(starting, return_exceptions=True)  # its job cancelled
                raise
            move.enter("saved", N_("Saved %1 variables (%2) in %3 s while the kernel at %4 started"), move.variables,
                       _size(move.total), f"{move.saved_in:.1f}", move.centre)
            target = KernelChannel(self.app.kernel_manager.get_kernel(target_id), f"at {move.centre}")
            await self._check(move, target, manifest)
            await self._copy(move, source, target, manifest)
            await self._restore(move, source, target, manifest)
            await self._switch(move, source, target_id)
            move.new_kernel_id, target_id = target_id, None  # kept
            outcome = (SWITCHED, "switched", N_("Switched: the kernel now runs at %1"), move.centre)
        except asyncio.CancelledError:
            move.error = move.error or "cancelled"
            outcome = (CANCELLED, "cancelled", N_("Move cancelled (%1); the kernel runs on where it was"), move.error)
        except (MoveError, ChannelError, HubKernelError) as e:
            move.error = str(e)
            outcome = (FAILED, "failed", N_("Move failed: %1. The kernel runs on where it was, with its variables"), e)
        except Exception as e:  # noqa: BLE001 - a move must never leave a half state; say what broke
            log.exception("Move %s failed", move.id)
            move.error = f"{type(e).__name__}: {e}"
            outcome = (FAILED, "failed", N_("Move failed: %1. The kernel runs on where it was"), move.error)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if outcome[0] != SWITCHED:
                move.status = RUNNING  # not done until the target is gone
                if move.centre:
                    move.enter("rolling back", N_("Ending the kernel at %1; the source keeps running"), move.centre)
                else:
                    move.enter("rolling back", "Ending the kernel at the target; the source keeps running")
            await self._clean(move, source, target, target_id, outcome[0])
            # the final word only once nothing is left at the target
            move.status = outcome[0]
            move.enter(*outcome[1:])

    async def _watch_heartbeat(self, move: Move) -> None:
        while True:
            await asyncio.sleep(min(move.heartbeat / 3, 2.0))
            if move.phase != "switching" and time.monotonic() - move.seen > move.heartbeat:
                move.error = f"the page that started the move stopped following it for {move.heartbeat:.0f} s"
                self.tasks[move.id].cancel()
                return

    async def _start_target(self, move: Move) -> str:
        centre_name = move.centre
        move.enter("queued", N_("Starting a kernel at %1"), centre_name)
        target_id = move.target_kernel_id = str(uuid.uuid4())
        start = asyncio.ensure_future(self.app.kernel_manager.start_kernel(kernel_id=target_id,
                                                                           kernel_name=move.spec))
        try:
            while not start.done():
                status = hub_status(target_id)
                if status.get("message"):
                    move.enter("queued", status["message"])
                await asyncio.wait([start], timeout=0.5)
            start.result()
        except asyncio.CancelledError:
            start.cancel()
            raise
        except Exception as e:  # the provisioner's words: refused, cancelled in the queue, ended
            raise MoveError(f"the kernel at {centre_name} did not start: {e}") from None
        return target_id

    async def _save(self, move: Move, source: KernelChannel) -> dict:
        """The source's snapshot, made while the target starts (the phase stays "queued")."""
        started = time.monotonic()
        manifest = await source.call_json(source.agent("pack", move.id))
        move.saved_in = time.monotonic() - started
        move.variables, move.total = len(manifest["variables"]), manifest["size"]
        move.unmovable = unmovable_of(manifest)
        log.info("Move %s: saved %d variables (%s) in %.2f s", move.id, move.variables, _size(move.total),
                 move.saved_in)
        return manifest

    async def _check(self, move: Move, target: KernelChannel, manifest: dict) -> None:
        answer = await target.call_json(target.agent("receive", move.id, json.dumps(manifest)))
        wrong = [f"{m} is not installed at {move.centre}" for m in answer.get("missing_modules", [])]
        wrong += [f"{m['name']} is {m['here']} at {move.centre} but {m['source']} at the source"
                  for m in answer.get("mismatched", [])]
        if wrong:
            raise MoveError("the environment at the target differs: " + "; ".join(wrong))
        missing = answer.get("missing_files", [])
        if missing:
            missing = await self._carry_files(move, manifest, missing)
        for f in missing:
            move.unmovable.append({"name": f["name"], "reason": f"a file whose path {f['path']} does not exist at "
                                                               f"{move.centre}{f.get('why', '')}",
                                   "code": "file-missing", "detail": f["path"]})
        move.skip_files = [f["name"] for f in missing]
        target.open_comm(answer["comm_target"])
        if move.unmovable:
            await self._choose(move)

    def _centre_of(self, kernel_id: str) -> str:
        """The centre a kernel runs at: its kernelspec's, or this server's for a kernel beside it."""
        name = self.app.kernel_manager.get_kernel(kernel_id).kernel_name
        try:
            return self.app.kernel_spec_manager.get_kernel_spec(name).metadata["fedhub"]["centre"]
        except (KeyError, TypeError, AttributeError):  # a plain kernelspec: the kernel runs beside the server
            return os.environ.get("FEDHUB_CENTRE", "")

    async def _carry_files(self, move: Move, manifest: dict, missing: list[dict]) -> list[dict]:
        """Copy the open files of the user's workspace that the target lacks (the hub's transfer);
        answers those still missing, each with why."""
        hub, home = HubKernels(), manifest.get("home", "")
        source = self._centre_of(move.kernel_id)
        target = self.app.kernel_spec_manager.get_kernel_spec(move.spec).metadata["fedhub"]["centre"]
        try:
            folders = {c["id"]: c.get("folder", "") for c in (await hub.call("GET", "workspace"))["centres"]}
        except (HubKernelError, KeyError, TypeError):
            return [{**f, "why": " (the hub's workspace listing did not answer)"} for f in missing]
        folder = folders.get(source, "")
        carried, still = {}, []
        for f in missing:
            relative = posixpath.relpath(f["path"], home) if home and f["path"].startswith(home + "/") else ""
            if folder and folder == folders.get(target) and relative.startswith(folder + "/"):
                carried[relative[len(folder) + 1:]] = f
            else:
                still.append({**f, "why": " (only files in your workspace are copied along)"})
        if not carried or not source or source == target:
            return still + list(carried.values())
        if len(carried) == 1:
            move.enter("queued", N_("Copying 1 open file to %1"), move.centre)
        else:
            move.enter("queued", N_("Copying %1 open files to %2"), len(carried), move.centre)
        try:
            transfer = await hub.call("POST", "transfers", {"from": source, "to": target, "paths": sorted(carried)})
            while transfer["status"] in ("queued", "copying"):
                await asyncio.sleep(0.5)
                transfer = await hub.call("GET", f"transfers/{transfer['id']}")
        except HubKernelError as e:
            transfer = {"status": "failed", "reason": str(e)}
        if transfer["status"] != "done":
            why = f" (copying it failed: {transfer.get('reason') or transfer['status']})"
            return still + [{**f, "why": why} for f in carried.values()]
        log.info("Move %s: copied %d open files from %s to %s", move.id, len(carried), source, target)
        return still

    async def _choose(self, move: Move) -> None:
        names = ", ".join(u["name"] for u in move.unmovable)
        if move.on_unmovable == "cancel":
            raise MoveError(f"these cannot move: {names}")
        if move.on_unmovable == "switch":
            return
        move.status = CHOOSING
        move.enter("choosing", N_("%1 cannot move (%2): switch anyway, or cancel"), len(move.unmovable), names)
        future = self.choices[move.id] = asyncio.get_running_loop().create_future()
        switch = await future
        move.status = RUNNING
        if not switch:
            move.error = "the user chose not to move without " + names
            raise asyncio.CancelledError()

    async def _copy(self, move: Move, source: KernelChannel, target: KernelChannel, manifest: dict) -> None:
        total, pieces = manifest["size"], manifest["chunks"]
        move.done, move.total = 0, total
        move.enter("copying", N_("Copying %1 to %2"), _size(total), move.centre)
        asked = source.ask(source.agent("chunk", move.id, 0)) if pieces else ""
        for index in range(pieces):
            following = source.ask(source.agent("chunk", move.id, index + 1)) if index + 1 < pieces else ""
            text = await source.value(asked)
            asked = following
            sha, _, encoded = text.partition(":")
            data = base64.b64decode(encoded)
            target.send_piece(index, sha, data)
            if index % 4 == 3:  # sending never fails; a target that died must not be fed to the end
                await target.ensure_alive()
            move.done += len(data)
            move.enter("copying", N_("Copying: %1 of %2"), _size(move.done), _size(total))
        got = await target.call_json(target.agent("received", move.id))
        if got["errors"] or got["pieces"] != pieces:
            raise MoveError(f"the copy arrived damaged: {got['pieces']} of {pieces} pieces intact "
                            f"({'; '.join(got['errors'][:2])})")

    async def _restore(self, move: Move, source: KernelChannel, target: KernelChannel, manifest: dict) -> None:
        move.enter("restoring", N_("Restoring %1 variables at %2"), move.variables, move.centre)
        result = await target.call_json(target.agent("restore", move.id, move.skip_files))
        if "error" in result:
            raise MoveError(f"restoring at {move.centre} failed: {result['error']}")
        log.info("Move %s: restored %d variables at %s in %.2f s", move.id, result["restored"], move.centre,
                 result["seconds"])
        now = int(await source.call("get_ipython().execution_count"))
        if now != manifest["execution_count"]:
            raise MoveError("a cell ran at the source after its variables were saved; nothing was switched, "
                            "move again to take its results along")

    async def _switch(self, move: Move, source: KernelChannel, target_id: str) -> None:
        move.enter("switching", N_("Switching to the kernel at %1"), move.centre)
        sessions = self.app.session_manager
        repointed: list[str] = []
        try:
            for session in await sessions.list_sessions():
                if session.get("kernel", {}).get("id") == move.kernel_id:
                    await sessions.update_session(session["id"], kernel_id=target_id)
                    repointed.append(session["id"])
        except BaseException:
            # until every session uses the target, the source is the kernel: point back the
            # ones already moved, so the clean-up may end the target without taking a tab with it
            for session_id in reversed(repointed):
                try:
                    await sessions.update_session(session_id, kernel_id=move.kernel_id)
                except Exception:  # noqa: BLE001 - the next one must still go back
                    log.exception("Move %s: session %s could not be pointed back to the source", move.id, session_id)
            raise
        try:
            await source.call(source.agent("leave", move.id), timeout=30)
        except ChannelError as e:  # it shuts down all the same, only more slowly
            log.warning("Move %s: the source did not prepare its exit: %s", move.id, e)
        await self.app.kernel_manager.shutdown_kernel(move.kernel_id)

    async def _end_target(self, move: Move, target_id: str) -> None:
        """End the target kernel; it must not outlive a move that did not switch to it. Its
        restarter is stopped first: a target whose job ended from outside is being restarted
        (which the provisioner refuses) at the same moment, and a shutdown racing that restart
        can fail and leave the kernel listed."""
        manager = self.app.kernel_manager
        try:
            manager.get_kernel(target_id).stop_restarter()
        except Exception:  # noqa: BLE001 - already gone, or no restarter: the shutdown still runs
            pass
        for attempt in range(2):
            try:
                await manager.shutdown_kernel(target_id)
                return
            except Exception:  # noqa: BLE001
                if target_id not in manager:
                    return
                if attempt == 0:
                    await asyncio.sleep(1.0)
                    continue
                log.exception("Move %s: ending the target kernel %s failed; removing it from the server", move.id,
                              target_id)
                manager.remove_kernel(target_id)  # its job was ended by the provisioner (which never raises)

    async def _clean(self, move: Move, source, target, target_id: str | None, status: str) -> None:
        """Drop the snapshot on both sides; end the target kernel unless the move switched to it."""
        self.choices.pop(move.id, None)
        if source is not None and status != SWITCHED:  # the source runs on: free its snapshot
            try:
                await source.call(source.agent("discard", move.id), timeout=60)
            except ChannelError as e:
                log.warning("Move %s: the source kept its snapshot in memory: %s", move.id, e)
        for channel in (source, target):  # the target's copy goes with the target kernel, or was used
            if channel is not None:
                channel.close()
        if target_id is not None and target_id in self.app.kernel_manager:
            await self._end_target(move, target_id)
