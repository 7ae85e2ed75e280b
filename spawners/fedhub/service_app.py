"""What FedHub's hub-managed services (quota, classes) share: where they listen, and how they
end when the hub stops them."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse


def listen(app, name: str, default_port: int, setting: str) -> str:
    """Listen where JupyterHub says the service is (``JUPYTERHUB_SERVICE_URL``); a port another
    process holds ends the service with the setting that moves it, not a traceback."""
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{default_port}"))
    try:
        app.listen(url.port, url.hostname)
    except OSError as e:
        sys.exit(f"{name} cannot listen on {url.hostname}:{url.port} ({e.strerror}): another process has that "
                 f"port; give this hub's service another one ({setting})")
    return f"{url.hostname}:{url.port}"


def run_until_stopped(loop) -> None:
    """Run the service's loop until the hub stops it (SIGINT), then close its ssh connections
    on that loop, so no ssh process is left and nothing is torn down after the loop is gone."""
    from .slurm.sshmux import SshMasters
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    loop.run_sync(SshMasters.close_all, timeout=10)


def ssh_sockets_in(state_dir: str) -> None:
    """The service's ssh control sockets in the hub's state directory (as the hub's), or the
    service ends with the reason (a directory someone else made)."""
    from .slurm.sshmux import SocketDirError, use_state_dir
    if not state_dir:
        return
    try:
        use_state_dir(state_dir)
    except (SocketDirError, OSError) as e:
        sys.exit(f"FedHub's service cannot start: {e}")
