"""Kernels at other centres stop costing allocation when idle: the federation file's
``kernel_idle_timeout`` (``FEDHUB_KERNEL_IDLE_TIMEOUT``, seconds) becomes Jupyter's own kernel
culling (``MappingKernelManager.cull_idle_timeout``) for them, and a culled one ends with its
Slurm job (the provisioner's end). Kernels beside the server live in the server's job and cost
nothing more; they stay until the server itself is culled, which saves them first. An operator
who sets ``cull_idle_timeout`` in the notebook environment keeps Jupyter's culling of all kernels.
"""

from __future__ import annotations

import os

from ..provisioner.provisioner import FedHubProvisioner


def setup_kernel_culling(serverapp) -> None:
    timeout = int(os.environ.get("FEDHUB_KERNEL_IDLE_TIMEOUT") or 0)
    manager = serverapp.kernel_manager
    if timeout <= 0 or manager.cull_idle_timeout:
        return
    manager.cull_idle_timeout = timeout
    manager.cull_interval = max(5, min(manager.cull_interval, timeout // 4))
    cull_if_idle = manager.cull_kernel_if_idle

    async def cull_if_elsewhere(kernel_id):
        kernel = manager._kernels.get(kernel_id)
        if isinstance(getattr(kernel, "provisioner", None), FedHubProvisioner):
            await cull_if_idle(kernel_id)

    manager.cull_kernel_if_idle = cull_if_elsewhere
    serverapp.log.info("FedHub: kernels at other centres idle over %s s are ended with their jobs", timeout)
