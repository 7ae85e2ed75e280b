"""Idle servers and kernels stop costing allocation, and culling loses nothing.

The Jupyter ecosystem's culler, jupyterhub-idle-culler, runs as a hub-managed service
(``hub/setup.py``) with FedHub's arbiter (``arbiter.py``, loaded by ``culler_config.py``):

1. every ``cull_every`` seconds the culler lists the ready servers with their last activity;
2. the arbiter finds each one's timeout from the federation file (``decide.py``: the
   partition's ``idle_timeout``, else the centre's ``sessions.idle_timeout``; 0 or none: never);
3. for one idle past it, the arbiter asks the hub first (``hub/api/culling.py``): the hub has
   the server save its session (the snapshot the next start offers to restore) and records the
   core-hours the stop returns (``returned.py``: the rest of the job's walltime, for the quota
   panel);
4. the culler then stops the server through JupyterHub's API, as it stops any server.

Kernels at other centres are the server's own business: ``sessions.kernel_idle_timeout`` becomes
the server's ``MappingKernelManager.cull_idle_timeout`` for them (``fedhub_lab``'s
``server/culling.py``), and a culled one ends with its Slurm job. Kernels beside the server are
left to the server's cull, which saves them first.
"""
