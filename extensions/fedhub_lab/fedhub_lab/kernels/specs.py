"""One kernelspec per centre where the user has a login: "Python 3 at Beta National Lab".

The hub lists those centres, with each one's default kernel resources, in the server's
environment (``FEDHUB_KERNEL_CENTRES``) when it starts the server, so listing kernels costs no
call to the hub. Each spec is named ``fedhub-<centre id>`` (scripts may POST
``{"name": "fedhub-beta"}`` to ``/api/kernels``), interrupts by message (no signal crosses
sites) and is launched by the ``fedhub-slurm`` provisioner. The local kernels stay as they are.
"""

from __future__ import annotations

import json
import os

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

PREFIX = "fedhub-"


def centres_from_env() -> list[dict]:
    try:
        centres = json.loads(os.environ.get("FEDHUB_KERNEL_CENTRES", "[]"))
    except ValueError:
        return []
    return [c for c in centres if isinstance(c, dict) and c.get("id")] if isinstance(centres, list) else []


class FedHubKernelSpecManager(KernelSpecManager):
    def _fedhub_specs(self) -> dict[str, KernelSpec]:
        specs = {}
        try:
            python3 = super().get_kernel_spec("python3")
        except NoSuchKernel:
            python3 = None
        for centre in centres_from_env():
            config = {"centre": centre["id"], **(centre.get("options") or {})}
            specs[PREFIX + centre["id"]] = KernelSpec(
                resource_dir=python3.resource_dir if python3 else "",
                display_name=f"Python 3 at {centre.get('name') or centre['id']}",
                language="python",
                argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                interrupt_mode="message",
                metadata={"kernel_provisioner": {"provisioner_name": "fedhub-slurm", "config": config},
                          "fedhub": {"centre": centre["id"], "centre_name": centre.get("name", "")}},
            )
        return specs

    def find_kernel_specs(self) -> dict[str, str]:
        found = super().find_kernel_specs()
        found.update({name: spec.resource_dir for name, spec in self._fedhub_specs().items()})
        return found

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name.startswith(PREFIX):
            spec = self._fedhub_specs().get(kernel_name)
            if spec is None:
                raise NoSuchKernel(kernel_name)
            return spec
        return super().get_kernel_spec(kernel_name)

    def get_all_specs(self) -> dict[str, dict]:
        specs = super().get_all_specs()
        for name, spec in self._fedhub_specs().items():
            specs[name] = {"resource_dir": spec.resource_dir, "spec": spec.to_dict()}
        return specs
