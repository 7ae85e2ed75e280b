"""A real JupyterHub subprocess running the project's hub config, for the demo and the tests.

It writes ``fedhub_site_config.py`` into the hub's working directory (the site config the hub
config loads last): the federation file, ports, state directory, the demo's login (through the
loopback OpenID Connect provider, or a shared password) and an admin token. Only the key that
encrypts auth_state (JUPYTERHUB_CRYPT_KEY, as JupyterHub requires) and a database URL with its
password (FEDHUB_DB_URL) reach the hub through its environment.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .centres import free_port
from .oidc import LocalOIDCProvider

PROXY = "/opt/fedhub/node/node_modules/.bin/configurable-http-proxy"


class LocalHub:
    """Start/stop/restart ``jupyterhub`` with a federation file; its state lives in ``workdir``."""

    def __init__(self, federation_file: Path, workdir: Path, *, config_file: Path, public_port: int | None = None,
                 hub_port: int | None = None, users: list[str] = (), password: str | None = None,
                 api_token: str | None = None, log_file: Path | None = None, extra_config: str = "",
                 proxy: str = PROXY, oidc: LocalOIDCProvider | None = None, db_url: str | None = None):
        self.federation_file = Path(federation_file)
        self.workdir = Path(workdir)
        self.config_file = Path(config_file).resolve()  # jupyterhub runs in workdir
        self.public_port = public_port or free_port()
        self.hub_port = hub_port or free_port()
        self.proxy_api_port = free_port()
        self.quota_port = free_port()
        self.classes_port = free_port()  # each hub its own services: hubs run side by side in tests
        self.users = list(users)
        self.password = password or secrets.token_urlsafe(9)
        self.api_token = api_token  # registered as an admin token when given
        self.log_file = log_file or self.workdir / "jupyterhub.log"
        self.extra_config = extra_config
        self.proxy = proxy
        self.oidc = oidc  # log in through this provider instead of the shared demo password
        if oidc is not None:
            oidc.allow_hub(self.url)
        self.db_url = db_url  # e.g. PostgreSQL (fedhub_testbed.postgres); else SQLite in workdir
        self.crypt_key = secrets.token_hex(32)  # auth_state is encrypted (JUPYTERHUB_CRYPT_KEY)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def site_config(self) -> str:
        lines = [
            "# Written by fedhub_testbed.hub: this hub's own settings, loaded after hub_config/jupyterhub_config.py.",
            f"c.FederatedSpawner.federation_file = {str(self.federation_file)!r}",
            f"c.FederatedSpawner.state_dir = {str(self.state_dir)!r}",
            f"c.JupyterHub.bind_url = {self.url!r}",
            f"c.JupyterHub.public_url = {self.url + '/'!r}",
            f"c.JupyterHub.hub_port = {self.hub_port}",
            f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{self.proxy_api_port}'",
            f"c.ConfigurableHTTPProxy.command = [{self.proxy!r}]",
            f"c.QuotaService.port = {self.quota_port}",
            f"c.ClassService.port = {self.classes_port}",
        ]
        if self.db_url:
            lines += ["import os", "c.JupyterHub.db_url = os.environ['FEDHUB_DB_URL']  # its password stays out of files"]
        if self.oidc is not None:
            lines += [self.oidc.hub_config(self.url)]
        elif self.users:
            lines += [
                "# The demo's login: fixed users and one password. A real federation uses OAuth.",
                "c.JupyterHub.authenticator_class = 'dummy'",
                f"c.DummyAuthenticator.password = {self.password!r}",
                f"c.Authenticator.allowed_users = {set(self.users)!r}",
            ]
        if self.api_token:
            lines += ["from fedhub.hub.setup import register_admin_token",
                      f"register_admin_token(c, {self.api_token!r})"]
        return "\n".join(lines) + "\n" + self.extra_config + "\n"

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        site = self.workdir / "fedhub_site_config.py"
        site.write_text(self.site_config())
        site.chmod(0o600)  # it holds the demo password and the admin token
        log = open(self.log_file, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDHUB_", "JUPYTERHUB_"))}
        env["JUPYTERHUB_CRYPT_KEY"] = self.crypt_key
        if self.db_url:
            env["FEDHUB_DB_URL"] = self.db_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.config_file)],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"jupyterhub exited with {self.proc.returncode}; see {self.log_file}:\n"
                                   + self.log_tail())
            if self._answers():
                return
            time.sleep(0.2)
        raise TimeoutError(f"jupyterhub did not answer within {timeout} s; see {self.log_file}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/hub/api/", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 30) -> None:
        """Stop the hub; then anything left in its process group (a proxy it failed to stop)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Kill the hub at once (SIGKILL), as a crash would; then its services and proxy, which a
        real crash of the hub's pod would take with it."""
        if self.proc is not None and self.proc.poll() is None:
            children = list(self.service_pids().values())
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def restart(self) -> None:
        self.stop()
        self.start()

    def service_pids(self) -> dict[str, int]:
        """Processes this hub started (services, proxy), by command line: its descendants only,
        never another hub's on the same machine."""
        out = subprocess.run(["ps", "-e", "-ww", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        rows = [line.split(None, 2) for line in out.splitlines() if len(line.split(None, 2)) == 3]
        family, found = {self.proc.pid}, {}
        changed = True
        while changed:
            changed = False
            for pid, ppid, args in rows:
                if int(ppid) in family and int(pid) not in family:
                    family.add(int(pid))
                    found[args] = int(pid)
                    changed = True
        return found

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
