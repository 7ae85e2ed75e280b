"""Every setting of FedHub's spawner (``c.FederatedSpawner.<name>``), with its help; the spawner
class inherits them. Kept apart so the spawner's module reads as JupyterHub's contract."""

from __future__ import annotations

from traitlets.config import LoggingConfigurable
from traitlets import Any, Bool, Callable, Float, Integer, Unicode, validate

from ..federation import FederationError, federation_at
from ..jobs.server import DEFAULT_SCRIPT


class SpawnerSettings(LoggingConfigurable):
    """The traits of ``FederatedSpawner`` (configure them under that name; JupyterHub's own
    ``Spawner`` traits come with the spawner class)."""

    federation_file = Unicode(
        "", help="Path of the federation file (YAML) listing the centres. Validated at hub start.",
    ).tag(config=True)

    state_dir = Unicode(
        "/var/lib/fedhub",
        help="Directory (made 0700) for FedHub's own state: owed scancels and the hub's identity. "
        "It must survive hub restarts (a volume in Kubernetes).",
    ).tag(config=True)

    legacy_centre = Unicode(
        "", help="Centre id where servers recorded by plain batchspawner run, so their state loads "
        "after switching a hub to FedHub.",
    ).tag(config=True)

    cancel_retry_interval = Float(30.0, help="Seconds between retries of owed scancels.").tag(config=True)

    start_timeout = Integer(900, help="Seconds a server may take to start, queue wait included.").tag(config=True)

    http_timeout = Integer(120, help="Seconds the hub waits for a started server to answer HTTP.").tag(config=True)

    auto_placement = Bool(
        True, help="Offer centre 'auto' (the default when the federation names no default centre): "
        "FedHub picks the centre where the server starts soonest.",
    ).tag(config=True)

    failover_attempts = Integer(3, help="With 'auto', how many ranked centres to try.").tag(config=True)

    failover_pending_timeout = Float(
        300.0, help="With 'auto', seconds a job may stay pending before FedHub cancels it and tries the next centre.",
    ).tag(config=True)

    class_failover_pending_timeout = Float(
        30.0, help="The same for a class's starts: a class begins at a set time, so a student's job that "
                   "waits at one of the class's centres moves to the next sooner.",
    ).tag(config=True)

    monitor_interval = Float(
        20.0, help="Seconds between a centre monitor's scheduler queries (one per centre, for all servers).",
    ).tag(config=True)

    monitor_grace = Float(30.0, help="Seconds a centre may fail to answer before it is marked down.").tag(config=True)

    scheduler_timeout = Float(
        20.0, help="Seconds one scheduler command may take before the centre counts as not answering.",
    ).tag(config=True)

    startup_poll_interval = Float(
        0.5, help="Seconds between scheduler queries while someone waits on a job (starting, stopping).",
    ).tag(config=True)

    listen_probe_interval = Float(
        0.1, help="Seconds between TCP probes of the reported port until the server listens.",
    ).tag(config=True)

    access_recheck_interval = Integer(
        30, min=1, help="Seconds a server trusts the hub's answer about a token before asking again "
        "(the server's HubOAuth.cache_max_age; JupyterHub's default is 300): a revoked token, or a teacher "
        "whose class lost the student, is refused at the server within this.",
    ).tag(config=True)

    snapshot_before_end = Integer(
        300, min=0, help="Seconds before a server's walltime ends at which the hub has the server save its "
        "session (every kernel's variables, which notebook uses which kernel) to the user's home at the centre, "
        "so the next start, at any centre, can restore it. 0: never.",
    ).tag(config=True)

    workspace_follows = Bool(
        True, help="Whether each user's workspace (the federation file's workspace.folder at each centre) follows "
        "them: what changed at other centres is brought to a centre while its job waits in the queue, and what "
        "changed at a centre is recorded when its server stops and every workspace_record_interval.",
    ).tag(config=True)

    workspace_record_interval = Integer(
        300, min=0, help="Seconds between two recordings of a running server's workspace (its changes reach a "
        "start elsewhere even if the server is not stopped first). 0: only when it stops.",
    ).tag(config=True)

    snapshot_max_bytes = Integer(
        2 * 1024**3, min=0, help="A kernel whose variables take more than this is not saved in a snapshot "
        "(listed, with its size, instead): a home's space is the user's.",
    ).tag(config=True)

    stop_confirm_timeout = Integer(15, help="Seconds stop() waits for Slurm to confirm the job ended.").tag(config=True)

    sweep_interval = Float(
        300.0, help="Seconds between sweeps that cancel jobs of this hub that no server knows. The first "
        "runs min(60 s, this) after hub start; jobs younger than that are left alone.",
    ).tag(config=True)

    job_output_dir = Unicode(
        ".fedhub/jobs", help="Directory, relative to the user's home at the centre, for job output "
        "(fedhub-<job id>.log). Made if missing.",
    ).tag(config=True)

    job_logs_kept = Integer(10, help="Newest job logs kept in job_output_dir; older ones are deleted.").tag(config=True)

    batch_script = Unicode(
        DEFAULT_SCRIPT,
        help="Job script (Jinja). It sees only operator settings and quoted hub values: login, centre, "
        "environment, prologue, cmd, tidy_logs. Resources are sbatch arguments, never #SBATCH lines.",
    ).tag(config=True)

    quota_hook = Any(
        None, allow_none=True,
        help="Callable (hub_user, centre_id) -> fraction of allocation left (0-1) or None. Placement "
        "skips centres at 0 and prefers more left. Default: the quota service's figures.",
    ).tag(config=True)

    quota_service_url = Unicode(
        "", help="Where the hub asks the fedhub-quota service (set by fedhub's hub setup); empty: no "
        "allocation checks.",
    ).tag(config=True)

    modify_job_hook = Callable(
        None, allow_none=True,
        help="""Callable (spawner, job) -> job or None, plain or async, run just before a server's job is
        submitted, like kubespawner's modify_pod_hook. ``job`` is a ``fedhub.jobs.server.JobSubmission``:
        ``spec`` (sbatch's arguments: partition, cores, memory_mb, walltime_s, gres, charge_account,
        reservation, ...), ``script`` (the job script's text), ``env`` (variables sent with the job)
        and ``centre``. Change them in place or return a new one; the job's name and comment are
        FedHub's and may not change. sbatch's arguments are checked again after the hook. ``env``
        holds the job's secrets too (its API token, its TLS key; they travel in a private file): the
        hook runs in the hub, and must not log or send them anywhere.""",
    ).tag(config=True)

    @validate("federation_file")
    def _check_federation_file(self, proposal):
        path = proposal["value"]
        if path:
            try:
                federation_at(path)
            except FederationError as e:
                raise ValueError(f"c.FederatedSpawner.federation_file: {e}") from None
        return path

