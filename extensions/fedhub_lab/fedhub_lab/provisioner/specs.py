"""One kernelspec per centre where the user has a login: "Python 3 at Beta National Lab".

The hub lists those centres, with each one's default kernel resources, in the server's
environment (``FEDHUB_KERNEL_CENTRES``) when it starts the server, so listing kernels costs no
call to the hub. Each spec is named ``fedhub-<centre id>`` (scripts may POST
``{"name": "fedhub-beta"}`` to ``/api/kernels``), interrupts by message (no signal crosses
sites) and is launched by the ``fedhub-slurm`` provisioner. The local kernels stay as they are.
"""

from __future__ import annotations

import hashlib
import json
import os

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

from .. import runtime

PREFIX = "fedhub-"


def centres_from_env() -> list[dict]:
    try:
        centres = json.loads(os.environ.get("FEDHUB_KERNEL_CENTRES", "[]"))
    except ValueError:
        return []
    return [c for c in centres if isinstance(c, dict) and c.get("id")] if isinstance(centres, list) else []


class FedHubKernelSpecManager(KernelSpecManager):
    def _spec(self, centre_id: str, centre_name: str, options: dict, display_name: str) -> KernelSpec:
        try:
            resource_dir = super().get_kernel_spec("python3").resource_dir  # the Python logo
        except NoSuchKernel:
            resource_dir = ""
        return KernelSpec(
            resource_dir=resource_dir, display_name=display_name, language="python",
            argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            interrupt_mode="message",
            metadata={"kernel_provisioner": {"provisioner_name": "fedhub-slurm",
                                             "config": {"request": {"centre": centre_id, **options}}},
                      "supported_encryption": ["curve"],  # the provisioner always makes a CurveZMQ pair
                      "fedhub": {"centre": centre_id, "centre_name": centre_name}},
        )

    def _fedhub_specs(self) -> dict[str, KernelSpec]:
        specs = {}
        for centre in centres_from_env():
            name = centre.get("name") or centre["id"]
            specs[PREFIX + centre["id"]] = self._spec(centre["id"], name, centre.get("options") or {},
                                                      f"Python 3 at {name}")
        for spec_name, wanted in runtime.current().requested_specs.items():
            options = wanted["options"]
            summary = ", ".join(str(options[k]) for k in ("partition", "cores", "memory", "walltime", "project")
                                if k in options)
            specs[spec_name] = self._spec(wanted["centre"], wanted["centre_name"], options,
                                          f"Python 3 at {wanted['centre_name']} ({summary})")
        return specs

    def add_requested(self, centre_id: str, centre_name: str, options: dict) -> str:
        """A kernelspec for a kernel with chosen resources (checked by the hub); its name."""
        digest = hashlib.sha256(json.dumps([centre_id, options], sort_keys=True).encode()).hexdigest()[:8]
        name = f"{PREFIX}{centre_id}-{digest}"
        runtime.current().requested_specs[name] = {"centre": centre_id, "centre_name": centre_name,
                            "options": {k: v for k, v in options.items() if k != "centre"}}
        return name

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


async def spec_for_request(hub, manager: KernelSpecManager, options: dict) -> str:
    """A kernelspec name for a kernel at a centre with the given resources, once the hub checked
    them as it checks a spawn (raises ``HubKernelError`` with the hub's words otherwise)."""
    if not isinstance(manager, FedHubKernelSpecManager):
        raise RuntimeError("the server's kernel_spec_manager_class is not FedHub's")
    checked = await hub.call("POST", "kernels", {**options, "dry_run": True})
    return manager.add_requested(checked["centre"], checked["centre_name"], checked["request"])
