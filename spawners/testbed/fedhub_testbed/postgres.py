"""A real PostgreSQL server on loopback for the hub's database (Debian's ``postgresql``), as a
deployment's would be: its own data directory, password logins over TCP, one database per hub.

Run by the demo and the test suite; a deployment gives the hub a URL to its own PostgreSQL.
"""

from __future__ import annotations

import glob
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from .centres import free_port


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise FileNotFoundError("PostgreSQL is not installed: `apt-get install postgresql` (make deps does it)")
    return Path(found[-1]).parent


class LocalPostgres:
    """``start()``, then ``database(name)`` gives a URL for the hub; ``stop()`` at the end."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.dir = Path(workdir)
        self.data = self.dir / "data"
        self.port = port or free_port()
        self.bin = postgres_bin()

    def _as_postgres(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True,
                              text=True, **kwargs)

    def start(self, timeout: float = 30) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "--auth-local=peer",
                               "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"])
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=on"
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"),
                           "-o", options, "-w", "-t", str(int(timeout)), "start"])

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._as_postgres([str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-d", database,
                                  "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]).stdout

    def database(self, name: str) -> str:
        """A new database and its owner with a random password; the hub's URL for it."""
        password = secrets.token_hex(16)
        self.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        self.psql(f"CREATE DATABASE {name} OWNER {name}")
        return f"postgresql+psycopg://{name}:{password}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
            except subprocess.CalledProcessError:
                pass
        deadline = time.monotonic() + 10
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def __enter__(self) -> "LocalPostgres":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
