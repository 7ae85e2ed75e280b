"""Where the user's workspace is in the notebook server's file browser, so the lab turns the
browser's paths into the workspace's (standard library only)."""

from __future__ import annotations

from pathlib import Path


def browser_prefix(root_dir: str, home: Path, folder: str) -> str | None:
    """The workspace's path in the file browser (relative to the server's root, "" when it is the
    root, ending in "/" otherwise); None when the file browser does not reach it."""
    if not folder:
        return None
    root, workspace = Path(root_dir).expanduser().resolve(), (home / folder).resolve()
    if workspace == root:
        return ""
    if workspace.is_relative_to(root):
        return workspace.relative_to(root).as_posix() + "/"
    return None
