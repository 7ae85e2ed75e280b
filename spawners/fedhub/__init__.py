"""FedHub: one JupyterHub in front of a federation of independent Slurm centres.

Subpackages, by responsibility: ``slurm`` (speaking to Slurm and one job's lifecycle),
``spawning`` (JupyterHub's spawner, options, placement), ``quota`` (allocations and their
service), ``hub`` (what jupyterhub_config.py applies), ``demo`` (centres and a hub on loopback).
The federation model (``federation``, ``units``) and login rules (``logins``) sit beside them.
"""

__version__ = "0.2.0"
