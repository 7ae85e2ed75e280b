"""A real JupyterHub subprocess with FedHub's config, for the demo and the test fixtures."""

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

from .localcentres import free_port

HUB_CONFIG = Path(__file__).resolve().parent.parent / "hub_config" / "jupyterhub_config.py"

# Debian's Chromium for the browser tests and benchmark (Playwright drives it; no browser download),
# with flags that keep it from reaching out to the network or needing a display.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


class LocalHub:
    """Start/stop/restart ``jupyterhub`` with a federation file; its state lives in ``workdir``."""

    def __init__(self, federation_file: Path, workdir: Path, *, public_port: int | None = None,
                 hub_port: int | None = None, users: list[str] = (), password: str | None = None,
                 api_token: str | None = None, log_file: Path | None = None, extra_env: dict | None = None,
                 extra_config: str = "", config_file: Path | None = None):
        self.federation_file = Path(federation_file)
        self.workdir = Path(workdir)
        self.public_port = public_port or free_port()
        self.hub_port = hub_port or free_port()
        self.proxy_api_port = free_port()
        self.quota_port = free_port()
        self.users = list(users)
        self.password = password or secrets.token_urlsafe(9)
        self.api_token = api_token  # registered as an admin token when given
        self.log_file = log_file or self.workdir / "jupyterhub.log"
        self.extra_env = extra_env or {}
        self.extra_config = extra_config
        self.base_config = Path(config_file) if config_file else HUB_CONFIG
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def hub_connect_url(self) -> str:
        """What compute nodes use to reach the hub's API (the centres' hub_connect_url)."""
        return f"http://127.0.0.1:{self.hub_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDHUB_")}
        env.update({
            "FEDHUB_FEDERATION": str(self.federation_file),
            "FEDHUB_BIND_URL": self.url,
            "FEDHUB_HUB_PORT": str(self.hub_port),
            "FEDHUB_PROXY_API_URL": f"http://127.0.0.1:{self.proxy_api_port}",
            "FEDHUB_QUOTA_PORT": str(self.quota_port),
            "FEDHUB_PROXY": os.environ.get("FEDHUB_PROXY", "/opt/fedhub/node/node_modules/.bin/configurable-http-proxy"),
        })
        if self.api_token:
            env["FEDHUB_API_TOKEN"] = self.api_token
        if self.users:
            env["FEDHUB_DEMO_USERS"] = ",".join(self.users)
            env["FEDHUB_DEMO_PASSWORD"] = self.password
        env.update(self.extra_env)
        return env

    def config_file(self) -> Path:
        """FedHub's hub config, plus ``extra_config`` lines when given (tests, benchmarks)."""
        if not self.extra_config:
            return self.base_config
        wrapper = self.workdir / "jupyterhub_config.py"
        wrapper.write_text(f"load_subconfig({str(self.base_config)!r})\n{self.extra_config}\n")
        return wrapper

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.config_file())],
            cwd=self.workdir, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
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

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
