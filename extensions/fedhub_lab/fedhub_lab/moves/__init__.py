"""Runs in the notebook server: moving a running kernel to another centre (the mover and its own
shell-channel line to each kernel). Uses the provisioner; the server's routes drive it."""
