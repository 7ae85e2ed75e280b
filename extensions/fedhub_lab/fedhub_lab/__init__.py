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


def _load_jupyter_server_extension(serverapp):
    from .handlers import setup_handlers
    from .kernels.handlers import setup_kernel_handlers

    setup_handlers(serverapp)
    setup_kernel_handlers(serverapp)
