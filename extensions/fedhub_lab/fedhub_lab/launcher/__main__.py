"""``python -m fedhub_lab.launcher``: the kernel job's only command."""

from .launcher import run

run()
