"""Helpers only the tests and benchmarks use (never shipped in the package)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import tempfile
import uuid
from pathlib import Path

# Debian's Chromium for the browser tests and benchmark (Playwright drives it; no browser download),
# with flags that keep it from reaching out to the network or needing a display.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def oidc_log_in(hub_url: str, user: str, password: str):
    """A browser's login, by HTTP: the hub's login link, the provider's form, back to the hub.
    The session then calls the hub's API as the browser would (its _xsrf cookie as the header)."""
    import requests
    s = requests.Session()
    form = s.get(f"{hub_url}/hub/oauth_login", timeout=30)
    r = s.post(form.url + "/login", data={"login": user, "password": password}, timeout=30)
    assert r.url.startswith(f"{hub_url}/hub/spawn"), (r.status_code, r.url)
    s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", path="/hub/") or s.cookies.get("_xsrf") or ""
    return s


def counting_wrappers() -> tuple[Path, Path]:
    """A directory of Slurm's client commands that log each call to a file, then run the real
    command: name it as a local centre's ``scheduler.commands_dir`` to count scheduler load."""
    wrap = Path(tempfile.mkdtemp(prefix="fedhub-count-", dir="/tmp"))
    wrap.chmod(0o755)
    log = wrap / "calls.log"
    log.touch()
    log.chmod(0o666)
    for cmd in ("squeue", "sinfo", "sbatch", "scancel", "sacct", "sacctmgr"):
        script = wrap / cmd
        script.write_text(f'#!/bin/sh\necho {cmd} >> {log}\nexec /usr/bin/{cmd} "$@"\n')
        script.chmod(0o755)
    return wrap, log


def execute_in_kernel(hub_url: str, user: str, token: str, kernel_id: str, code: str, timeout: float = 120) -> dict:
    """Run ``code`` in a kernel as the lab does: through the proxy and the notebook server's
    websocket. Returns the reply's content with the cell's ``stdout`` and its ``execution_count``."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def go():
        url = f"{hub_url.replace('http', 'ws')}/user/{user}/api/kernels/{kernel_id}/channels"
        ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
        msg_id, out = uuid.uuid4().hex, []
        ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": user, "session": msg_id,
                       "version": "5.3"}, "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True}}))
        reply, idle = None, False
        try:  # the reply (shell) and the output (IOPub) come in either order: wait for both
            while reply is None or not idle:
                msg = json.loads(await asyncio.wait_for(ws.read_message(), timeout))
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "execute_reply":
                    reply = msg["content"]
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
            return {**reply, "stdout": "".join(out)}
        finally:
            ws.close()
    # in a thread of its own: a browser test's thread already runs Playwright's event loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def run_lab_command(page, label: str, tries: int = 4) -> None:
    """Run a JupyterLab command by its label through the command palette, as a user does. Under
    load the lab may not have taken the keyboard yet (the shortcut goes nowhere), or the modal
    palette closes again when a panel still loading takes the focus (seen in a clean clone: the
    input was visible, then gone before it was typed into): the whole open-type-enter is tried
    again then."""
    palette = page.locator(".lm-CommandPalette-input")
    for attempt in range(tries):
        try:
            if not palette.is_visible():
                page.keyboard.press("Control+Shift+c")
            palette.wait_for(state="visible", timeout=5_000)
            palette.fill(label, timeout=5_000)
            palette.press("Enter", timeout=5_000)
            return
        except Exception:  # playwright's TimeoutError: open the palette again
            if attempt == tries - 1:
                raise


def write_as(user: str, path: Path, data: bytes, mode: int = 0o644) -> None:
    """A file the user wrote (theirs, as is its folder), wherever a centre keeps their home."""
    import os
    import pwd
    account = pwd.getpwnam(user)
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in (path.parent, *[p for p in path.parent.parents if p.name == "fedhub"]):
        os.chown(folder, account.pw_uid, account.pw_gid)
    path.write_bytes(data)
    os.chown(path, account.pw_uid, account.pw_gid)
    os.chmod(path, mode)

