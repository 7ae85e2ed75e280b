"""FedHub inside a notebook server and its kernels, split by the process each part runs in:

    server/       the notebook server's extension: the lab's routes (quota, kernels, moves),
                  one kernel start per notebook, the visitor log
    provisioner/  jupyter_client's provisioner for kernels at centres, its hub client, kernelspecs
    moves/        moving a running kernel to another centre (in the server)
    snapshots/    a whole session to files and back: kernels' variables, documents, files carried
    workspace/    the user's workspace at this centre as the hub's index sees it (issue 25)
    agent/        inside a user's kernel: the move agent and ``quota()``
    launcher/     a kernel's Slurm job: starts ipykernel, speaks a versioned protocol with the hub
    runtime, hub_tls, quota_source   what several of them share

A part imports only from its own line or the ones above it in tests/unit/test_layers.py's order
(shared, kernel and job, provisioner, moves, server). The server forwards the browser's requests
to the hub with the server's own JupyterHub token, so the browser never needs a token of its own.
"""

from .agent.quota_widget import quota

__all__ = ["quota"]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "fedhub-lab"}]


def _jupyter_server_extension_points():
    return [{"module": "fedhub_lab"}]


def _link_jupyter_server_extension(serverapp):
    """Before the server makes its managers: FedHub's kernel spec manager, which adds a kernelspec
    per centre (``provisioner/specs.py``), and its session manager, which starts one kernel per
    notebook however often a waiting page asks (``server/sessions.py``), unless the server was
    configured with others. And kernels beside the server speak over IPC sockets in the server's
    runtime directory (0700) instead of TCP on 127.0.0.1, which every user with a job or a shell
    on the node could reach; FedHub's kernels at centres keep TCP, with CurveZMQ."""
    from .server.sessions import FedHubSessionManager
    from .provisioner.specs import FedHubKernelSpecManager

    # (reading the traits here would compute their defaults before the server's gateway settings exist)
    configured = serverapp.config.get("ServerApp", {})
    if "kernel_spec_manager_class" not in configured:
        serverapp.kernel_spec_manager_class = FedHubKernelSpecManager
    if "session_manager_class" not in configured:
        serverapp.session_manager_class = FedHubSessionManager
    if "transport" not in serverapp.config.get("KernelManager", {}):
        serverapp.config.KernelManager.transport = "ipc"


def _load_jupyter_server_extension(serverapp):
    from .server.quota import setup_handlers
    from .server.kernels import setup_kernel_handlers
    from .server.moves import setup_move_handlers
    from .server.time_left import setup_time_left_handler
    from .server.handoff import setup_handoff_handlers
    from .server.continues import setup_continue_handlers
    from .server.workspace import setup_workspace_handlers
    from .server.visitors import watch_visitors
    from .server.culling import setup_kernel_culling

    setup_handlers(serverapp)
    setup_kernel_handlers(serverapp)
    setup_move_handlers(serverapp)
    setup_time_left_handler(serverapp)
    setup_handoff_handlers(serverapp)
    setup_continue_handlers(serverapp)
    setup_workspace_handlers(serverapp)
    watch_visitors(serverapp)
    setup_kernel_culling(serverapp)
