"""Runs in the notebook server, driven by jupyter_client: the kernel provisioner whose kernel is a
Slurm job at a centre, its client for the hub's kernel API, and the kernelspecs (one per centre)
that select it."""
