"""Runs in a kernel's Slurm job at a centre, with only the standard library: starts ipykernel and
speaks the launcher protocol (``protocol.LAUNCHER_PROTOCOL``) with the hub.

    python -m fedhub_lab.launcher
"""
