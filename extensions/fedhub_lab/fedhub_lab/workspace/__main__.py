"""The workspace agent, run as the user at a centre by the hub (over its ssh connection, or as
the user on a local centre) with the notebook environment's Python:

    python -m fedhub_lab.workspace scan <folder>            JSON: the workspace's files and what was skipped
    python -m fedhub_lab.workspace send <folder> [<path>...] a tar stream of those files on stdout
                                                            (no paths: NUL-separated on stdin)
    python -m fedhub_lab.workspace receive <folder>         unpack a tar stream from stdin

``<folder>`` is the workspace, relative to the user's home (the federation file's
``workspace.folder``). Paths stay inside it; a refusal is said on stderr by name, exit status 2.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from ..snapshots.files import FileRefused, inside, read_tar, write_tar
from .scan import scan


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("scan", "send", "receive"):
        print(__doc__, file=sys.stderr)
        return 2
    home = Path.home()
    command, folder = argv[0], argv[1]
    try:
        root = inside(home, folder)
        if command == "scan":
            json.dump(scan(root, home), sys.stdout)
        elif command == "send":
            paths = argv[2:] or [p for p in sys.stdin.buffer.read().decode().split("\0") if p]
            write_tar(root, paths, sys.stdout.buffer, "the workspace")
        else:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            files, size = read_tar(root, sys.stdin.buffer, "the workspace")
            json.dump({"files": files, "bytes": size}, sys.stdout)
    except FileRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    except (tarfile.TarError, OSError) as e:  # a cut stream, a file that cannot be read or written
        print(f"failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
