"""One kernel start per notebook, however often the page asks.

jupyter_server records a session only once its kernel has started. A kernel at a centre may wait
in Slurm's queue for minutes; a page reloaded meanwhile asks again for the same notebook and would
start a second kernel (a second job, left to wait or run unused). This session manager lets the
second request for the same document wait for the first start and answer with its session.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.services.sessions.sessionmanager import SessionManager


class FedHubSessionManager(SessionManager):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._starting: dict[str, asyncio.Future] = {}

    async def create_session(self, path=None, name=None, type=None, kernel_name=None, kernel_id=None):
        # JupyterLab 4 gives each session a fresh path (a UUID) and names the document in ``name``
        document = (type or "", name or path or "")
        if not document[1] or kernel_id is not None:
            return await super().create_session(path=path, name=name, type=type, kernel_name=kernel_name,
                                                kernel_id=kernel_id)
        running = self._starting.get(document)
        if running is not None:
            self.log.info("A kernel for %s is already starting; this request waits for it", document[1])
            return await asyncio.shield(running)  # its session; its failure (a cancelled wait) too
        start = asyncio.ensure_future(super().create_session(path=path, name=name, type=type,
                                                             kernel_name=kernel_name))
        self._starting[document] = start
        try:
            return await asyncio.shield(start)
        finally:
            if start.done():
                self._starting.pop(document, None)
            else:  # this request went away; the start goes on for whoever asks next
                start.add_done_callback(lambda _: self._starting.pop(document, None))
