"""The hub's index of each user's workspace, kept in the hub's own database (PostgreSQL in a
deployment, SQLite in a small one) beside JupyterHub's tables: one row per user and path with
the newest version (SHA-256, size, time, the centre holding it) and which version each centre
last had. ``plan.py`` reads and changes it; placement asks which centre holds most of a user's
bytes. Created on first use; JupyterHub's own tables and migrations are not touched.
"""

from __future__ import annotations

import json

from sqlalchemy import BigInteger, Column, Float, MetaData, String, Table, Text, delete, select
from sqlalchemy.engine import Engine

from .plan import Entry, Version

metadata = MetaData()
FILES = Table(
    "fedhub_workspace_files", metadata,
    Column("user", String(255), primary_key=True),
    Column("path", String(4096), primary_key=True),
    Column("sha256", String(64), nullable=True),  # None: deleted (the tombstone centres still act on)
    Column("size", BigInteger, nullable=False, default=0),
    Column("mtime", Float, nullable=False, default=0.0),
    Column("centre", String(64), nullable=False),
    Column("seen", Text, nullable=False, default="{}"),  # {centre: sha256}
)


class WorkspaceIndex:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine, checkfirst=True)

    def load(self, user: str) -> dict[str, Entry]:
        with self.engine.connect() as db:
            rows = db.execute(select(FILES).where(FILES.c.user == user)).mappings().all()
        return {r["path"]: Entry(Version(r["sha256"], r["size"], r["mtime"]) if r["sha256"] else None,
                                 r["centre"], json.loads(r["seen"])) for r in rows}

    def save(self, user: str, index: dict[str, Entry]) -> None:
        """Replace the user's rows with ``index`` in one transaction."""
        rows = [{"user": user, "path": path, "sha256": e.newest.sha256 if e.newest else None,
                 "size": e.newest.size if e.newest else 0, "mtime": e.newest.mtime if e.newest else 0.0,
                 "centre": e.centre, "seen": json.dumps(e.seen, sort_keys=True)} for path, e in index.items()]
        with self.engine.begin() as db:
            db.execute(delete(FILES).where(FILES.c.user == user))
            if rows:
                db.execute(FILES.insert(), rows)

    def holdings(self, user: str) -> dict[str, int]:
        """Bytes of the user's newest versions each centre holds (placement prefers the centre
        that already holds a user's large data when the start estimates are close)."""
        held: dict[str, int] = {}
        for entry in self.load(user).values():
            if entry.newest is None:
                continue
            for centre, sha in entry.seen.items():
                if sha == entry.newest.sha256:
                    held[centre] = held.get(centre, 0) + entry.newest.size
        return held
