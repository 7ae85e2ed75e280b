"""What makes a Slurm job a kernel: FedHub's launcher from the centre's notebook environment.

The script holds only operator settings (the centre's prologue) and the launcher's path, quoted.
The launcher's one-time token and its TLS key travel in the job's secrets file (never in argv,
the script or the job's output) and the launcher removes them from its environment before it
starts the kernel. The kernel's own keys (HMAC, CurveZMQ) are not in the job at all: the
launcher fetches them from the hub over TLS, after checking the hub's certificate.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import replace

from ..federation import Centre, Federation
from ..logins import usable_login
from ..slurm.commands import JobSpec
from ..request import SpawnRequest, default_resources
from .server import job_spec, tidy_logs
from .tls import script_lines
from ..units import format_memory_mb, format_walltime

ENV_PREFIX = "JUPYTERHUB_FEDHUB_KERNEL_"  # a login node's sshd accepts JUPYTERHUB_* (AcceptEnv)

KERNEL_SCRIPT = """#!/bin/bash
# FedHub kernel for {login} at {centre}
set -euo pipefail
{tidy_logs}
{tls}
{prologue}
exec {launcher}
"""


def launcher_command(centre: Centre) -> str:
    """The launcher, run by the python beside the centre's notebook server command."""
    python = os.path.join(os.path.dirname(centre.singleuser_cmd), "python")
    return shlex.join([python, "-m", "fedhub_lab.launcher"])


def kernel_job_spec(centre: Centre, request: SpawnRequest, hub_user: str, output_dir: str) -> JobSpec:
    spec = job_spec(centre, request, hub_user, output_dir)
    log = f"{output_dir}/fedhub-kernel-%j.log" if output_dir else "fedhub-kernel-%j.log"
    return replace(spec, output=log)


TLS_VARS = {name: f"{ENV_PREFIX}SSL_{name.upper()}" for name in ("keyfile", "certfile", "cafile")}


def kernel_script(centre: Centre, login: str, output_dir: str, logs_kept: int, tls: bool = False) -> str:
    """``tls``: the launcher gets a key and certificate of the hub's CA (it calls the hub's API,
    which asks for one) and the CA bundle it checks the hub by, as files private to the job."""
    return KERNEL_SCRIPT.format(login=login, centre=centre.id, prologue=centre.job_prologue,
                                launcher=launcher_command(centre), tidy_logs=tidy_logs(output_dir, logs_kept),
                                tls=script_lines(TLS_VARS) if tls else "")


def kernel_environment(kernel_id: str, token: str, hub_api_url: str, centre: Centre) -> dict[str, str]:
    """The launcher's settings: where to report, with what, and which address is its node's."""
    return {
        f"{ENV_PREFIX}ID": kernel_id,
        f"{ENV_PREFIX}TOKEN": token,
        f"{ENV_PREFIX}URL": f"{hub_api_url.rstrip('/')}/fedhub/kernels/{kernel_id}/launcher",
        f"{ENV_PREFIX}NODES": json.dumps(dict(centre.node_addresses)),
    }


def kernel_centres(federation: Federation, hub_user: str, server: SpawnRequest | None = None) -> list[dict]:
    """The centres where ``hub_user`` may run kernels, with each one's default kernel request
    (the server makes one kernelspec of each). At the ``server``'s centre, kernels charge the
    server's project; elsewhere the user's first project there."""
    out = []
    for centre in federation.centres:
        if usable_login(centre, hub_user) is None:
            continue
        partition = centre.partitions[0]
        defaults = default_resources(partition)
        out.append({"id": centre.id, "name": centre.name, "options": {
            "partition": partition.name, "cores": defaults["cores"],
            "memory": format_memory_mb(defaults["memory_mb"]), "walltime": format_walltime(defaults["walltime_s"])}})
        if server is not None and server.centre == centre.id and server.project:
            out[-1]["options"]["project"] = server.project
    return out
