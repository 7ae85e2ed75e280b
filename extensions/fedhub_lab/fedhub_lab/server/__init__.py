"""Runs in the notebook server: the HTTP routes the lab calls (quota, kernels at centres, moves),
the session manager that starts one kernel per notebook, and the visitor log.

Imports the provisioner and the mover below it; nothing below imports it."""
