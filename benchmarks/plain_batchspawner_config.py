"""Baseline hub for the spawn-latency benchmark: plain batchspawner SlurmSpawner, configured as
its documentation suggests, at one local centre. Not used by FedHub itself.

Addresses, ports, the admin token and batchspawner's exec_prefix come from the site config the
benchmark's LocalHub writes into the working directory."""

import os

import batchspawner  # noqa: F401  (registers batchspawner's port handler)

JOBENV = "/opt/fedhub/jobenv"
c = get_config()  # noqa: F821
load_subconfig(os.path.join(os.getcwd(), "fedhub_site_config.py"))  # noqa: F821

c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.Spawner.cmd = [f"{JOBENV}/bin/jupyterhub-singleuser"]
c.SlurmSpawner.batchspawner_singleuser_cmd = f"{JOBENV}/bin/batchspawner-singleuser"
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.req_partition = "cpu"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_memory = "1024M"
c.SlurmSpawner.req_runtime = "01:00:00"
c.SlurmSpawner.state_exechost_exp = "127.0.0.1"  # the node name does not resolve here
c.SlurmSpawner.start_timeout = 300
