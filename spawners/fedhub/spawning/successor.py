"""A second job for a running server: the server's successor at another centre.

"Continue at another centre" starts the same JupyterHub server again, elsewhere, while the first
job still runs: the same user, name, API token, OAuth client and TLS certificate, so the user's
URL, cookies and scopes stay what they were. ``Successor`` is the spawner as the launch and the
failover see it, with a job, address, tunnel and progress of its own (everything else is the
spawner's), so the tested path of a spawn starts it. ``take_over`` then makes it the server:
the spawner's job, address and state, and the proxy's route, in one step.
"""

from __future__ import annotations

import asyncio

from jupyterhub.utils import fmt_ip_url

from ..jobs.progress import ProgressLog
from .failover import Failover
from .launch import ServerLaunch
from .workspace import SpawnerWorkspace

OWN = {"request", "job", "ip", "port", "tunnel", "_tunnel_open", "_port_reported", "_submitting", "progress_log",
       "launch", "failover", "workspace", "_where"}


class Successor:
    def __init__(self, spawner, label: str):
        seat = self.__dict__
        seat["spawner"] = spawner
        seat.update(request=None, job=None, ip=spawner.listen_ip, port=0, tunnel=None, _tunnel_open=False,
                    _port_reported=asyncio.Event(), _submitting=None, progress_log=ProgressLog(),
                    _where=f"[{spawner.user.name}/{spawner.name or '-'} -> {label}]")
        seat["launch"], seat["failover"] = ServerLaunch(self), Failover(self)
        seat["workspace"] = SpawnerWorkspace(self)  # staged at the successor's centre, said on its own progress

    def __getattr__(self, name):  # only what the successor does not hold itself
        return getattr(self.__dict__["spawner"], name)

    def __setattr__(self, name, value):
        if name not in OWN:
            raise AttributeError(f"a successor keeps only its own job, address and progress, not {name}")
        self.__dict__[name] = value

    def get_env(self) -> dict:
        """The server's environment, bound where the successor runs (JupyterHub writes the
        running server's address into JUPYTERHUB_SERVICE_URL; the job reports its own port)."""
        env = self.spawner.get_env()
        proto = "https" if self.spawner.internal_ssl else "http"
        env["JUPYTERHUB_SERVICE_URL"] = f"{proto}://{fmt_ip_url(self.ip)}:{self.port}{self.spawner.server.base_url}"
        return env

    @property
    def centre(self):
        return self.job.centre if self.job is not None else None

    @property
    def waiting_for_port(self) -> bool:
        return self.job is not None and self.port == 0

    def message(self) -> str:
        return self.progress_log.events[-1]["message"] if self.progress_log.events else ""

    async def start(self, request, check_allocation) -> None:
        """Start the successor's job and wait until its server answers (as a spawn does)."""
        from ..request import AUTO
        if request.centre == AUTO:
            await self.failover.start_anywhere(request)
        else:
            await check_allocation(request)
            await self.launch.start_at(request)

    async def give_up(self) -> None:
        """Cancel the successor's job (confirmed, or owed to a centre that does not answer)."""
        try:
            await self.launch.cancel_job()
        finally:
            await self.launch.close_tunnel()


async def take_over(spawner, successor: Successor) -> tuple:
    """Make the successor the server: the spawner's job and address, the database's record of
    the server, the proxy's route, the stored state. Answers the old (job, tunnel) to end."""
    old = (spawner.job, spawner.tunnel)
    spawner.job, spawner.request = successor.job, successor.request
    spawner.ip, spawner.port = successor.ip, successor.port
    spawner.tunnel, spawner._tunnel_open = successor.tunnel, successor._tunnel_open
    server = spawner.server
    server.ip, server.port = spawner.ip, spawner.port
    spawner.save_state_now()
    proxy = spawner.user.settings.get("proxy")
    if proxy is not None:
        await proxy.add_user(spawner.user, spawner.name)
    return old
