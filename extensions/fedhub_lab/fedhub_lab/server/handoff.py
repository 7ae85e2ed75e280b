"""The routes through which the hub hands a session from this server to a server at another
centre (only this server's user, or the hub with this server's own token, reaches them):

    POST {base}fedhub/api/session/save      {"id", "centre", "max_bytes", "again"}: every kernel's
                                             variables to ~/.fedhub/sessions/<id>/ (nothing stops);
                                             answers the record and the files the session needs
                                             elsewhere (path, size, mtime, sha256); "again": true
                                             updates an earlier save of that id (only kernels that
                                             ran a cell since are saved anew)
    POST {base}fedhub/api/session/lacking   {"files": [...]}: which of them this home lacks
    POST {base}fedhub/api/session/files     {"paths": [...]}: those files as a tar stream
    PUT  {base}fedhub/api/session/files     a tar stream: unpacked into the home, each file whole
    POST {base}fedhub/api/session/restore   {"id", "where"}: the kernels back with their
                                             variables, the documents' sessions on them
    POST {base}fedhub/api/session/end       {"id"}: shut every kernel down (its job too, for one
                                             at a centre): the session continues elsewhere; 409
                                             when a cell ran after the save
    GET  {base}fedhub/api/session/saved/<id> a saved session's record

Tar streams pass through a bounded queue between the event loop and a worker thread, so neither
end holds more than a few pieces in memory.
"""

from __future__ import annotations

import asyncio
import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..snapshots import files
from ..snapshots.kernel_state import SnapshotError
from ..snapshots.session import (carried_paths, end_session, home, read_session, restore_session,
                                 save_session)
from .kernels import json_object_body

PIECES_IN_FLIGHT = 8


class _QueueWriter:
    """A file object for a worker thread whose writes go, bounded, to the event loop."""

    def __init__(self, loop, queue: asyncio.Queue):
        self.loop, self.queue = loop, queue

    def write(self, data) -> int:
        asyncio.run_coroutine_threadsafe(self.queue.put(bytes(data)), self.loop).result()
        return len(data)

    def flush(self) -> None:
        pass


class _QueueReader:
    """A file object for a worker thread that reads what the event loop receives."""

    def __init__(self, loop, queue: asyncio.Queue):
        self.loop, self.queue, self.buffer = loop, queue, b""

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buffer) < n) and self.queue is not None:
            piece = asyncio.run_coroutine_threadsafe(self.queue.get(), self.loop).result()
            if piece is None:
                self.queue = None
                break
            self.buffer += piece
        out, self.buffer = (self.buffer, b"") if n < 0 else (self.buffer[:n], self.buffer[n:])
        return out


def _refusal(error: Exception) -> web.HTTPError:
    return web.HTTPError(400, str(error))


class SaveHandler(APIHandler):
    @web.authenticated
    async def post(self):
        body = json_object_body(self)
        try:
            record = await save_session(self.serverapp, str(body.get("id", "")), str(body.get("centre", "")),
                                        int(body.get("max_bytes") or 0), again=body.get("again") is True)
        except FileExistsError:
            raise web.HTTPError(409, f"id: a session {body.get('id')} was already saved here") from None
        except SnapshotError as e:
            raise _refusal(e) from None
        documents, folders = carried_paths(record)
        carried = await asyncio.to_thread(lambda: files.listing(home(), files.session_paths(home(), documents,
                                                                                            folders)))
        self.finish(json.dumps({**record, "files": carried}))


class LackingHandler(APIHandler):
    @web.authenticated
    async def post(self):
        listed = json_object_body(self).get("files")
        if not isinstance(listed, list):
            raise web.HTTPError(400, "files: a list of {path, size, sha256}")
        try:
            paths = await asyncio.to_thread(files.lacking, home(), listed)
        except (files.FileRefused, KeyError, TypeError) as e:
            raise _refusal(e) from None
        self.finish(json.dumps({"paths": paths}))


@web.stream_request_body
class FilesHandler(APIHandler):
    async def prepare(self):
        await super().prepare()  # who asks, before a byte of the body is taken
        if self.current_user is None:
            raise web.HTTPError(403, "only this server's user")
        if self.request.method == "PUT":
            self.request.connection.set_max_body_size(1 << 40)
            self._pieces: asyncio.Queue = asyncio.Queue(PIECES_IN_FLIGHT)
            self._unpacking = asyncio.ensure_future(asyncio.to_thread(
                files.read_tar, home(), _QueueReader(asyncio.get_running_loop(), self._pieces)))
        else:
            self._body = bytearray()

    async def data_received(self, chunk: bytes):
        if self.request.method == "PUT":
            await self._pieces.put(chunk)
        else:
            self._body += chunk

    @web.authenticated
    async def post(self):
        try:
            paths = json.loads(bytes(self._body) or b"{}").get("paths")
        except (ValueError, AttributeError):
            raise web.HTTPError(400, "the body must be a JSON object with paths") from None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise web.HTTPError(400, "paths: a list of home-relative file paths")
        try:
            for p in paths:
                files.inside(home(), p)
        except files.FileRefused as e:
            raise _refusal(e) from None
        self.set_header("Content-Type", "application/x-tar")
        queue: asyncio.Queue = asyncio.Queue(PIECES_IN_FLIGHT)
        loop = asyncio.get_running_loop()

        def pack():
            try:
                files.write_tar(home(), paths, _QueueWriter(loop, queue))
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
        packing = asyncio.ensure_future(asyncio.to_thread(pack))
        while (piece := await queue.get()) is not None:
            self.write(piece)
            await self.flush()
        await packing
        self.finish()

    @web.authenticated
    async def put(self):
        await self._pieces.put(None)
        try:
            count, size = await self._unpacking
        except (files.FileRefused, OSError, EOFError) as e:
            raise _refusal(e) from None
        self.finish(json.dumps({"files": count, "bytes": size}))

    def on_connection_close(self):
        if self.request.method == "PUT" and not self._unpacking.done():  # a cut stream: the partial file goes
            asyncio.ensure_future(self._pieces.put(None))


class RestoreHandler(APIHandler):
    @web.authenticated
    async def post(self):
        body = json_object_body(self)
        try:
            result = await restore_session(self.serverapp, str(body.get("id", "")), str(body.get("where", "here")))
        except FileNotFoundError as e:
            raise web.HTTPError(404, str(e)) from None
        except SnapshotError as e:
            raise _refusal(e) from None
        self.finish(json.dumps(result))


class EndHandler(APIHandler):
    @web.authenticated
    async def post(self):
        try:
            ended = await end_session(self.serverapp, str(json_object_body(self).get("id", "")))
        except FileNotFoundError as e:
            raise web.HTTPError(404, str(e)) from None
        except SnapshotError as e:
            raise web.HTTPError(409, str(e)) from None
        self.finish(json.dumps({"ended": ended}))


class SavedHandler(APIHandler):
    @web.authenticated
    def get(self, snapshot_id):
        try:
            self.finish(json.dumps(read_session(snapshot_id)))
        except (FileNotFoundError, SnapshotError) as e:
            raise web.HTTPError(404, str(e)) from None


def setup_handoff_handlers(serverapp) -> None:
    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], "fedhub", "api", "session")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "save"), SaveHandler),
        (url_path_join(base, "lacking"), LackingHandler),
        (url_path_join(base, "files"), FilesHandler),
        (url_path_join(base, "restore"), RestoreHandler),
        (url_path_join(base, "end"), EndHandler),
        (url_path_join(base, "saved", r"([0-9a-f]{8,32})"), SavedHandler),
    ])
