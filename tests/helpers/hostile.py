"""What a hostile user controls: their own ~/.jupyter/jupyter_server_config.py, which their
notebook server runs. Shared by the tenant and move tests."""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path


class HostileHome:
    """A user's ~/.jupyter/jupyter_server_config.py, written as that user would, removed after."""

    def __init__(self, user: str, config: str):
        self.user, self.config = user, config
        self.home = Path(pwd.getpwnam(user).pw_dir)

    def __enter__(self):
        entry = pwd.getpwnam(self.user)
        directory = self.home / ".jupyter"
        directory.mkdir(exist_ok=True)
        (directory / "jupyter_server_config.py").write_text(self.config)
        for path in (directory, directory / "jupyter_server_config.py"):
            shutil.chown(path, entry.pw_uid, entry.pw_gid)
        self.captured.unlink(missing_ok=True)
        return self

    @property
    def captured(self) -> Path:
        return self.home / "captured-headers"

    def tokens(self) -> set[str]:
        if not self.captured.exists():
            return set()
        return {line.split(None, 1)[1].strip() for line in self.captured.read_text().splitlines()
                if line.lower().startswith(("token ", "bearer "))}

    def __exit__(self, *exc):
        shutil.rmtree(self.home / ".jupyter", ignore_errors=True)
        self.captured.unlink(missing_ok=True)
