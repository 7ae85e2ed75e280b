"""FedHub inside a notebook server: the quota status bar and panel (JupyterLab), the server
handler they call, and ``quota()`` for any notebook front end.

The server part runs in the user's single-user server at a centre. It forwards the browser's
request to the hub's ``fedhub-quota`` service with the server's own JupyterHub token, so the
browser never needs a token of its own and only ever sees its user's figures.
"""

from .widget import quota

__all__ = ["quota"]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "fedhub-lab"}]


def _jupyter_server_extension_points():
    return [{"module": "fedhub_lab"}]


def _link_jupyter_server_extension(serverapp):
    """Before the server makes its managers: FedHub's kernel spec manager, which adds a kernelspec
    per centre (``kernels/specs.py``), and its session manager, which starts one kernel per
    notebook however often a waiting page asks (``kernels/sessions.py``), unless the server was
    configured with others. And kernels beside the server speak over IPC sockets in the server's
    runtime directory (0700) instead of TCP on 127.0.0.1, which every user with a job or a shell
    on the node could reach; FedHub's kernels at centres keep TCP, with CurveZMQ."""
    from .kernels.sessions import FedHubSessionManager
    from .kernels.specs import FedHubKernelSpecManager

    # (reading the traits here would compute their defaults before the server's gateway settings exist)
    configured = serverapp.config.get("ServerApp", {})
    if "kernel_spec_manager_class" not in configured:
        serverapp.kernel_spec_manager_class = FedHubKernelSpecManager
    if "session_manager_class" not in configured:
        serverapp.session_manager_class = FedHubSessionManager
    if "transport" not in serverapp.config.get("KernelManager", {}):
        serverapp.config.KernelManager.transport = "ipc"


def _load_jupyter_server_extension(serverapp):
    from .handlers import setup_handlers
    from .kernels.handlers import setup_kernel_handlers
    from .moves.handlers import setup_move_handlers
    from .visitors import watch_visitors

    setup_handlers(serverapp)
    setup_kernel_handlers(serverapp)
    setup_move_handlers(serverapp)
    watch_visitors(serverapp)
