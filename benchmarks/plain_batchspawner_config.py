"""Baseline hub for the spawn-latency benchmark: plain batchspawner SlurmSpawner, configured as
its documentation suggests, at one local centre. Not used by FedHub itself."""

import os

import batchspawner  # noqa: F401  (registers batchspawner's port handler)

conf = os.environ["BENCH_SLURM_CONF"]
jobenv = os.environ.get("FEDHUB_JOBENV", "/opt/fedhub/jobenv")

c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"  # noqa: F821
c.JupyterHub.bind_url = os.environ["FEDHUB_BIND_URL"]  # noqa: F821
c.JupyterHub.hub_port = int(os.environ["FEDHUB_HUB_PORT"])  # noqa: F821
c.JupyterHub.cleanup_servers = False  # noqa: F821
c.ConfigurableHTTPProxy.command = [os.environ["FEDHUB_PROXY"]]  # noqa: F821
c.ConfigurableHTTPProxy.api_url = os.environ["FEDHUB_PROXY_API_URL"]  # noqa: F821
c.JupyterHub.services = [{"name": "bench", "api_token": os.environ["FEDHUB_API_TOKEN"]}]  # noqa: F821
c.JupyterHub.load_roles = [{"name": "admin", "services": ["bench"]}]  # noqa: F821
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}  # noqa: F821
c.Spawner.cmd = [f"{jobenv}/bin/jupyterhub-singleuser"]  # noqa: F821
c.SlurmSpawner.batchspawner_singleuser_cmd = f"{jobenv}/bin/batchspawner-singleuser"  # noqa: F821
c.SlurmSpawner.exec_prefix = f"runuser -u {{username}} -- env SLURM_CONF={conf}"  # noqa: F821
c.SlurmSpawner.req_srun = ""  # noqa: F821
c.SlurmSpawner.req_partition = "cpu"  # noqa: F821
c.SlurmSpawner.req_nprocs = "1"  # noqa: F821
c.SlurmSpawner.req_memory = "1024M"  # noqa: F821
c.SlurmSpawner.req_runtime = "01:00:00"  # noqa: F821
c.SlurmSpawner.state_exechost_exp = "127.0.0.1"  # the node name does not resolve here  # noqa: F821
c.SlurmSpawner.start_timeout = 300  # noqa: F821
