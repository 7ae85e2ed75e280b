"""The hub's state directory: FedHub's own files that must survive a hub restart.

Owed scancels and the hub's identity live here (JupyterHub keeps servers' state in its own
database). The directory is private to the hub (0700) and files are replaced atomically and
durably, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

from . import runtime


def ensure_state_dir(path: str) -> Path:
    """Create ``path`` (0700) if needed and check that only the hub can use it."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = p.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(p, 0o700)
    return p


def write_private_json(path: Path, data, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (and durably, unless ``durable`` is False: for
    what is written again soon anyway), readable by the hub only."""
    write_private_text(path, json.dumps(data, indent=1), durable)


def write_private_text(path: Path, text: str, durable: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def hub_id(state_dir: str) -> str:
    """This hub's identity (8 hex digits), made once and kept in the state directory: every job
    the hub submits carries it, so the hub finds its jobs again after a restart. Read once per
    process."""
    key = os.path.abspath(state_dir)
    if key not in runtime.current().hub_ids:
        runtime.current().hub_ids[key] = _read_or_make_hub_id(key)
    return runtime.current().hub_ids[key]


def _read_or_make_hub_id(state_dir: str) -> str:
    path = ensure_state_dir(state_dir) / "hub-id"
    try:
        value = path.read_text().strip()
        if len(value) == 8 and all(ch in "0123456789abcdef" for ch in value):
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(4)
    write_private_text(path, value + "\n")
    return value
