"""Helpers only the tests and benchmarks use (never shipped in the package)."""

from __future__ import annotations

import tempfile
from pathlib import Path

# Debian's Chromium for the browser tests and benchmark (Playwright drives it; no browser download),
# with flags that keep it from reaching out to the network or needing a display.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


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
