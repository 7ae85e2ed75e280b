"""What the demo's class shows of materials and of tenants kept apart: a folder ``day1`` in the
teacher's home to hand out, and one student whose server records every token it receives (a
hostile student could add the same lines to their own server's config), so a user sees that
what reaches a student's server opens nothing else.

Both live in real homes of the machine's demo users: made when the demo starts, the recorder
removed when it stops (a config of the user's own is never touched)."""

from __future__ import annotations

import json
import pwd
import shutil
from pathlib import Path

MARK = "# fedhub demo: records the tokens this server receives (removed when the demo stops)"
RECORDER = MARK + '''
import os, tornado.web
_find = tornado.web.Application.find_handler
def _recording(self, request, **kw):
    header = request.headers.get("Authorization", "")
    if header:
        with open(os.path.expanduser("~/received-tokens.txt"), "a") as f:
            f.write(header.split()[-1] + "\\n")
    return _find(self, request, **kw)
tornado.web.Application.find_handler = _recording
'''
WELCOME = {"cells": [{"cell_type": "markdown", "metadata": {},
                      "source": "# Day 1: notebooks on HPC\n\nRun the cell below, then save this notebook: "
                                "your teacher collects it."},
                     {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                      "source": "import os, socket\nprint(socket.gethostname(), os.environ.get('SLURM_CLUSTER_NAME'))"}],
           "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _own(path: Path, user: pwd.struct_passwd) -> None:
    shutil.chown(path, user.pw_uid, user.pw_gid)


def teacher_folder(home: Path) -> Path:
    """``fedhub/day1`` in the teacher's ``home`` at a centre (the workspace, the lab's file
    browser) with a first notebook, unless the teacher has a day1 there already."""
    account = pwd.getpwuid(home.stat().st_uid)
    workspace = home / "fedhub"
    folder = workspace / "day1"
    if not folder.exists():
        folder.mkdir(parents=True)
        (folder / "welcome.ipynb").write_text(json.dumps(WELCOME, indent=1))
        for path in (workspace, folder, folder / "welcome.ipynb"):
            _own(path, account)
    return folder


class HeaderRecorder:
    """``~student/.jupyter/jupyter_server_config.py`` recording the tokens the server receives in
    ``~student/received-tokens.txt``, while the demo runs."""

    def __init__(self, student: str):
        self.student = student
        self.installed = False

    @property
    def home(self) -> Path:
        return Path(pwd.getpwnam(self.student).pw_dir)

    @property
    def config(self) -> Path:
        return self.home / ".jupyter" / "jupyter_server_config.py"

    @property
    def tokens(self) -> Path:
        return self.home / "received-tokens.txt"

    def install(self) -> bool:
        """False when the student has a server config of their own (left alone)."""
        if self.config.exists() and not self.config.read_text().startswith(MARK):
            return False
        account = pwd.getpwnam(self.student)
        self.config.parent.mkdir(exist_ok=True)
        self.config.write_text(RECORDER)
        for path in (self.config.parent, self.config):
            _own(path, account)
        self.tokens.unlink(missing_ok=True)
        self.installed = True
        return True

    def remove(self) -> None:
        if self.installed and self.config.exists() and self.config.read_text().startswith(MARK):
            self.config.unlink()
