"""Which of a kernel's variables can move to another centre, and why the others cannot.

A variable moves when it survives pickling as a value (cloudpickle: functions, lambdas and
classes defined in the notebook travel by value). Some objects would pickle, or could be rebuilt,
but would not be the same object elsewhere (a file open for writing, a socket, a thread): those
are listed with the reason, never faked. Modules are not moved; they are imported again under
the same names. Files open for reading move as their path and position, if the path exists at
the target.
"""

from __future__ import annotations

import io
import socket
import sqlite3
import threading
import types
from dataclasses import dataclass, field

# What FedHub never moves: a stable code (the lab shows its own sentence for it, in the user's
# language: moves.ts) and the English reason.
_NEVER = (
    (socket.socket, "socket", "an open socket: its connection cannot leave this node"),
    ((types.GeneratorType, types.AsyncGeneratorType, types.CoroutineType), "generator",
     "a running generator or coroutine: its paused frame cannot be copied"),
    ((sqlite3.Connection, sqlite3.Cursor), "database", "a database connection: connect again at the target"),
    (threading.Thread, "thread", "a thread: threads do not move; start it again at the target"),
)
# The codes of the reasons below, by reason (an open file's, and a value pickling refused).
CODES = {reason: code for _, code, reason in _NEVER} | {
    "a closed file: nothing to reopen": "closed-file",
    "a file open for writing: reopening it elsewhere would not be the same file": "file-for-writing",
    "a stream without a path (a pipe or an in-memory buffer tied to this process)": "stream",
    "a file that cannot tell its position": "file-position",
}


@dataclass
class OpenFile:
    """A file open for reading, reopened at the same position where its path exists."""
    name: str
    path: str
    mode: str
    position: int
    encoding: str | None


@dataclass
class Screened:
    movable: dict[str, object] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)          # name -> module imported again
    files: list[OpenFile] = field(default_factory=list)
    unmovable: dict[str, str] = field(default_factory=dict)        # name -> reason


def why(reasons: dict[str, str]) -> dict[str, list[str]]:
    """name -> [code, detail] for each reason: what the lab words in the user's language."""
    out = {}
    for name, reason in reasons.items():
        if reason in CODES:
            out[name] = [CODES[reason], ""]
        elif reason.startswith("cannot be copied (") and reason.endswith(")"):
            out[name] = ["not-copyable", reason[len("cannot be copied ("):-1]]
    return out


def user_names(namespace: dict, hidden: dict) -> list[str]:
    """The notebook's own variables: not IPython's (In, Out, _, exit...) nor private names."""
    return sorted(n for n in namespace if not n.startswith("_") and n not in hidden)


def screen(namespace: dict, hidden: dict) -> Screened:
    """Sort the user's variables by type; pickling itself is tried by the snapshot."""
    out = Screened()
    for name in user_names(namespace, hidden):
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            out.modules[name] = value.__name__
            continue
        reason = _never_reason(value)
        if reason:
            out.unmovable[name] = reason
        elif isinstance(value, io.IOBase):
            opened = _open_file(name, value)
            if isinstance(opened, OpenFile):
                out.files.append(opened)
            else:
                out.unmovable[name] = opened
        else:
            out.movable[name] = value
    return out


def _never_reason(value) -> str:
    for kinds, _code, reason in _NEVER:
        if isinstance(value, kinds):
            return reason
    return ""


def _open_file(name: str, f: io.IOBase) -> OpenFile | str:
    if f.closed:
        return "a closed file: nothing to reopen"
    mode = getattr(f, "mode", "")
    path = getattr(f, "name", None)
    if not isinstance(mode, str) or any(c in mode for c in "wax+"):
        return "a file open for writing: reopening it elsewhere would not be the same file"
    if not isinstance(path, str):
        return "a stream without a path (a pipe or an in-memory buffer tied to this process)"
    import os
    try:
        position = f.tell()
    except (OSError, ValueError):
        return "a file that cannot tell its position"
    return OpenFile(name, os.path.abspath(path), mode, position, getattr(f, "encoding", None))


def pickle_failure(error: BaseException) -> str:
    """The reason shown for a value that pickling refused."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"cannot be copied ({type(error).__name__}: {text[:160]})"
