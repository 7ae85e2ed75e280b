"""jupyterhub-idle-culler's config file for FedHub (``--config=<this file>``, set by
``hub/setup.py``): the culler asks FedHub's arbiter about each server."""

from fedhub.culling.arbiter import from_environment

c = get_config()  # noqa: F821
c.IdleCuller.cull_arbiter_hook = from_environment()
