"""What makes a Slurm job a notebook server: its resources, its script and its environment.

The script holds only operator settings and hub values, each quoted (the centre's prologue,
FEDHUB_* exports, batchspawner-singleuser with the server command); resources are sbatch
arguments rebuilt from the validated request (``slurm.commands.sbatch_argv``), so nothing a
user typed reaches the script. The job's output goes to a FedHub directory in the user's home
at the centre (not the home itself, where the file browser would show it first), and the
script keeps only the most recent logs there. The server replaces the script's shell (exec), so
Slurm's signals reach it and its process tracking cannot lose it when the shell would have died.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined

from ..projects import default_charge_account
from ..federation import Centre
from ..slurm.commands import JobSpec
from ..slurm.routes import job_env_name_ok
from ..request import SpawnRequest

DEFAULT_SCRIPT = """#!/bin/bash
# FedHub notebook server for {{login}} at {{centre}}
set -euo pipefail
{{tidy_logs}}
{{environment}}
{{tls}}
{{prologue}}
exec {{cmd}}
"""

_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def job_spec(centre: Centre, request: SpawnRequest, hub_user: str, output_dir: str) -> JobSpec:
    """The sbatch request for ``request`` at ``centre`` (name and comment are the lifecycle's)."""
    partition = centre.partition(request.partition)
    return JobSpec(
        name="fedhub", partition=request.partition, cores=request.cores, memory_mb=request.memory_mb,
        walltime_s=request.walltime_s, gres=partition.gres(request.gpu_type, request.gpus),
        output=f"{output_dir}/fedhub-%j.log" if output_dir else "fedhub-%j.log",
        charge_account=request.project or default_charge_account(centre, hub_user),
        reservation=request.reservation,
    )


def job_log(output_dir: str, job_id: str) -> str:
    """Where a job's output is, as a user finds it at the centre."""
    return f"~/{output_dir}/fedhub-{job_id}.log" if output_dir else f"~/fedhub-{job_id}.log"


def server_command(centre: Centre, args: list[str]) -> str:
    """batchspawner's port-reporting wrapper beside the centre's server command, quoted."""
    wrapper = os.path.join(os.path.dirname(centre.singleuser_cmd), "batchspawner-singleuser")
    return shlex.join([wrapper, centre.singleuser_cmd, *args])


def fedhub_exports(centre: Centre, quota_url: str, kernel_centres: list[dict] = (),
                   kernel_encryption: bool = True, kernel_idle_timeout_s: int = 0) -> str:
    """Which centre the server runs at, where its quota service is (the lab extension), where
    its kernels may run (one kernelspec each), how long a kernel at another centre may be idle,
    (only with internal SSL off) that its kernels at centres speak plain ZeroMQ, and the
    workspace: made if missing, and the file browser's root unless the centre shows the home."""
    values = {"FEDHUB_CENTRE": centre.id, "FEDHUB_CENTRE_NAME": centre.name}
    if kernel_idle_timeout_s:
        values["FEDHUB_KERNEL_IDLE_TIMEOUT"] = str(kernel_idle_timeout_s)
    if not kernel_encryption:
        values["FEDHUB_KERNEL_ENCRYPTION"] = "off"
    if quota_url:
        values["FEDHUB_QUOTA_URL"] = quota_url
    if kernel_centres:
        values["FEDHUB_KERNEL_CENTRES"] = json.dumps(list(kernel_centres), separators=(",", ":"))
    folder = centre.workspace.folder  # the federation file's pattern keeps it to letters, digits, _ . - /
    values["FEDHUB_WORKSPACE"] = folder
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    lines.append(f'mkdir -p -m 0700 -- "$HOME"/{shlex.quote(folder)}')
    if centre.workspace.show == "workspace":  # the file browser's root, unless the operator set notebook_dir
        lines.append(f'export JUPYTERHUB_ROOT_DIR="${{JUPYTERHUB_ROOT_DIR:-$HOME/{folder}}}"')
    lines.append(lab_language_lines(centre))
    return "\n".join(lines)


def lab_language_lines(centre: Centre) -> str:
    """JupyterLab's default language, the user's on the hub (JUPYTERHUB_FEDHUB_LANGUAGE, sent with the job):
    the notebook environment's fedhub_lab ships a Jupyter config directory per language whose
    labconfig sets it; a language the user picks in the lab's own menu still wins."""
    prefix = os.path.dirname(os.path.dirname(centre.singleuser_cmd))
    languages = shlex.quote(f"{prefix}/share/jupyter/fedhub_lab/languages")
    return ('case "${JUPYTERHUB_FEDHUB_LANGUAGE:-}" in zh_CN) export JUPYTER_CONFIG_PATH='
            f'{languages}/"$JUPYTERHUB_FEDHUB_LANGUAGE"' '"${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}";; esac')


def tidy_logs(output_dir: str, keep: int) -> str:
    """Shell lines that delete all but the newest ``keep`` FedHub job logs (names FedHub chose)."""
    if not output_dir or keep <= 0:
        return ""
    pattern = shlex.quote(output_dir) + "/fedhub-*.log"
    return f"ls -1t -- {pattern} 2>/dev/null | tail -n +{keep + 1} | xargs -r rm -f -- || true"


def batch_script(template: str, centre: Centre, login: str, args: list[str], quota_url: str,
                 output_dir: str, logs_kept: int, kernel_centres: list[dict] = (), tls_lines: str = "",
                 kernel_idle_timeout_s: int = 0) -> str:
    """``tls_lines``: the shell lines that put the server's key and certificates in place
    (``spawning/tls.py``); a template without ``{{tls}}`` gets them after the environment."""
    environment = fedhub_exports(centre, quota_url, kernel_centres, kernel_encryption=bool(tls_lines),
                                 kernel_idle_timeout_s=kernel_idle_timeout_s)
    if tls_lines and "{{tls}}" not in template.replace(" ", ""):
        environment, tls_lines = f"{environment}\n{tls_lines}", ""
    return _env.from_string(template).render(
        login=login, centre=centre.id, environment=environment, tls=tls_lines,
        prologue=centre.job_prologue, cmd=server_command(centre, args),
        tidy_logs=tidy_logs(output_dir, logs_kept),
    )


def nodes_api_url(centre: Centre, hub_api_url: str) -> str | None:
    """The hub's API as ``centre``'s nodes reach it: through the login node (tunnel mode), at
    ``hub_connect_url``, or (None) at the hub's own URL. Its scheme is the hub's: with internal
    SSL the API is served only over TLS, so an ``http://`` hub_connect_url is used as https."""
    scheme = "https" if hub_api_url.startswith("https:") else "http"
    if centre.network.tunnel:
        network = centre.network
        return f"{scheme}://{network.login_node_address}:{network.hub_api_port}/hub/api"
    if centre.hub_connect_url:
        return scheme + centre.hub_connect_url[centre.hub_connect_url.index(":"):] + "/hub/api"
    return None


def job_environment(spawner_env: dict[str, str], hub_api_url: str, nodes_hub_api_url: str | None) -> dict[str, str]:
    """The Jupyter variables that travel to the job (sbatch exports them), with the hub's API
    named as the centre's nodes reach it (``hub_connect_url``, or the login node in tunnel
    mode), when that differs from the hub's own. The TLS file paths are the job's own (its
    script sets them), never the hub's."""
    env = {k: v for k, v in spawner_env.items() if k.startswith(("JUPYTERHUB_", "JPY_"))
           and k not in ("JUPYTERHUB_SSL_KEYFILE", "JUPYTERHUB_SSL_CERTFILE", "JUPYTERHUB_SSL_CLIENT_CA")}
    if nodes_hub_api_url:
        local = hub_api_url.rstrip("/")
        remote = nodes_hub_api_url.rstrip("/")
        env = {k: (remote + v[len(local):] if v.startswith(local) else v) for k, v in env.items()}
    return env


@dataclass
class JobSubmission:
    """A server's job as it is about to be submitted, handed to ``c.FederatedSpawner.modify_job_hook``:
    ``spec`` (sbatch's arguments, rebuilt and checked by ``slurm.commands.sbatch_argv``), ``script``
    (the job script's text) and ``env`` (variables sent with the job; names with SECRET travel
    in its private secrets file)."""

    spec: JobSpec
    script: str
    env: dict[str, str]
    centre: Centre


class JobHookError(ValueError):
    """The operator's job hook returned something FedHub cannot submit."""


async def apply_job_hook(hook, spawner, submission: JobSubmission) -> JobSubmission:
    """Run the operator's hook (a plain or async callable); it may change the submission in place
    or return a new one. The job's name and comment tie it to this hub, user and server (the sweep
    and a hub restart find it by them), so a hook may not change them."""
    if hook is None:
        return submission
    name, comment, before = submission.spec.name, submission.spec.comment, set(submission.env)
    result = hook(spawner, submission)
    if inspect.isawaitable(result):
        result = await result
    result = submission if result is None else result
    if not isinstance(result, JobSubmission):
        raise JobHookError(f"c.FederatedSpawner.modify_job_hook returned {type(result).__name__}; return the "
                           "JobSubmission it was given (changed), or None")
    if (result.spec.name, result.spec.comment) != (name, comment):
        raise JobHookError("c.FederatedSpawner.modify_job_hook changed the job's name or comment, which tie the job "
                           "to this hub and server; change anything else")
    if not isinstance(result.script, str) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in result.env.items()):
        raise JobHookError("c.FederatedSpawner.modify_job_hook: script must be text and env a dict of text to text")
    refused = sorted(name for name in set(result.env) - before if not job_env_name_ok(name))
    if refused:
        raise JobHookError(f"c.FederatedSpawner.modify_job_hook set {', '.join(refused)}: a job's variables must be "
                           "named JUPYTERHUB_* or JPY_* (upper case), the only ones a login node's sshd passes on")
    return result
