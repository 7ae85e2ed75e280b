"""The workspace agent, run as the user at a centre by the hub (over its ssh connection, or as
the user on a local centre) with the notebook environment's Python:

    python -m fedhub_lab.workspace scan <folder>            JSON: the workspace's files and what was skipped
    python -m fedhub_lab.workspace send <folder> [<path>...] a tar stream of those files on stdout
                                                            (no paths: NUL-separated on stdin)
    python -m fedhub_lab.workspace send <folder> --resume   the same, JSON on stdin: {"paths": [...],
                                                            "resume": {path: [bytes held, sha256]}}
    python -m fedhub_lab.workspace partials <folder>        JSON on stdin {path: sha256}; JSON: the bytes
                                                            of each that arrived before a cut
    python -m fedhub_lab.workspace forget <folder>          the same input; removes those partials
    python -m fedhub_lab.workspace receive <folder>         unpack a tar stream from stdin; JSON: what arrived
    python -m fedhub_lab.workspace receive <folder> --progress  the same, after lines "#<bytes so far>"
                                                            (at most five a second)
    python -m fedhub_lab.workspace arrange <folder>         JSON on stdin: {"rename": [[from, to]...],
                                                            "delete": [path...]}; JSON: what was done

``<folder>`` is the workspace, relative to the user's home (the federation file's
``workspace.folder``). Paths stay inside it; a refusal is said on stderr by name, exit status 2.
A file sent carries its SHA-256 (from the last scan) and is kept at the receiver only if its
bytes match; ``arrange`` sets aside a version kept beside another and removes what was deleted
at another centre, before the newest versions arrive.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from pathlib import Path

from ..snapshots.files import FileRefused, forget_partials, inside, partials, read_tar, write_tar
from .scan import known_hashes, scan


def arrange(root: Path, asked: dict) -> dict:
    """Rename and delete files inside the workspace (``asked`` from the hub); a file already
    gone is not an error, a path out of the workspace is refused by name."""
    renamed = deleted = 0
    for old, new in asked.get("rename", []):
        source, target = inside(root, old, "the workspace"), inside(root, new, "the workspace")
        if source.is_file() and not source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(source, target)
            renamed += 1
    for path in asked.get("delete", []):
        gone = inside(root, path, "the workspace")
        if gone.is_file() or gone.is_symlink():
            gone.unlink()
            deleted += 1
    return {"renamed": renamed, "deleted": deleted}


def _progress_lines(every: float = 0.2):
    """A progress callback printing "#<bytes>" lines on stdout, at most one per ``every`` seconds."""
    last = [0.0]

    def said(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            sys.stdout.write(f"#{done}\n")
            sys.stdout.flush()
    return said


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("scan", "send", "receive", "arrange", "partials", "forget"):
        print(__doc__, file=sys.stderr)
        return 2
    home = Path.home()
    command, folder = argv[0], argv[1]
    try:
        root = inside(home, folder)
        if command == "scan":
            json.dump(scan(root, home), sys.stdout)
        elif command == "send" and argv[2:] == ["--resume"]:
            asked = json.load(sys.stdin)
            write_tar(root, asked["paths"], sys.stdout.buffer, "the workspace", known_hashes(home, root),
                      asked.get("resume") or {})
        elif command == "send":
            paths = argv[2:] or [p for p in sys.stdin.buffer.read().decode().split("\0") if p]
            write_tar(root, paths, sys.stdout.buffer, "the workspace", known_hashes(home, root))
        elif command == "receive":
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            arrived: dict = {}
            files, size = read_tar(root, sys.stdin.buffer.raw, "the workspace", arrived,  # read_tar buffers it
                                   _progress_lines() if argv[2:] == ["--progress"] else None)
            sys.stdout.write(json.dumps({"files": files, "bytes": size, "sha256": arrived}))  # one write
        elif command == "partials":
            json.dump(partials(root, json.load(sys.stdin), "the workspace"), sys.stdout)
        elif command == "forget":
            json.dump({"removed": forget_partials(root, json.load(sys.stdin), "the workspace")}, sys.stdout)
        else:
            json.dump(arrange(root, json.load(sys.stdin)), sys.stdout)
    except FileRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as e:  # what came on stdin was not the hub's request
        print(f"refused: the request on stdin was not understood ({e})", file=sys.stderr)
        return 2
    except (tarfile.TarError, OSError) as e:  # a cut stream, a file that cannot be read or written
        print(f"failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
