"""What the federation's identity provider says about each user (their claims), kept where
every part of the hub can read it: the spawner, placement, the quota service.

The authenticator records a user's claims at each login and token refresh, one private file
per user in FedHub's state directory (``claims/<hub user>.json``, replaced atomically), so they
survive hub restarts and reach the quota service, which runs as its own process. Readers get a
copy cached for a few seconds, so a scheduler command never waits on the disk.

Nothing here trusts a claim: ``fedhub.logins`` applies the same rules to a claimed login as to
one made by a template (never root, never a system account, never another user's login).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from . import runtime
from .statedir import ensure_state_dir, write_private_json

CACHE_SECONDS = 5.0
_USER_FILE_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


class ClaimStore:
    """The claims files of one state directory, with the caches that keep readers off the disk."""

    def __init__(self, state_dir: str | Path):
        self.directory = Path(state_dir) / "claims"
        self.cache: dict[str, tuple[float, dict]] = {}  # hub user -> (read at, claims)
        self.index: tuple[float, int, dict] | None = None  # (read at, dir mtime, {(claim, centre, login): users})
        self.per_file: dict[str, tuple[tuple, frozenset]] = {}  # hub user -> (file's stamp, its triples)


def configure(state_dir: str | Path | None) -> None:
    """Where the claims live (the hub's state directory); None: nobody has claims."""
    runtime.current().claims = ClaimStore(state_dir) if state_dir else None


def _store() -> ClaimStore | None:
    return runtime.current().claims


def record(hub_user: str, claims: dict) -> None:
    """Keep what the provider says about ``hub_user`` now (only JSON objects are kept)."""
    store = _store()
    if store is None or not _USER_FILE_RE.fullmatch(hub_user):
        return
    ensure_state_dir(str(store.directory))
    kept = {k: v for k, v in claims.items() if isinstance(v, (dict, list, str, int, float, bool))}
    # not fsynced: a crash loses at most the newest claims, which the next login records again
    write_private_json(store.directory / f"{hub_user}.json", {"claims": kept, "recorded": time.time()}, durable=False)
    store.cache[hub_user] = (time.monotonic(), kept)


def claims_of(hub_user: str) -> dict:
    """The claims last recorded for ``hub_user`` ({} if none)."""
    store = _store()
    if store is None:
        return {}
    now = time.monotonic()
    cached = store.cache.get(hub_user)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    claims: dict = {}
    if _USER_FILE_RE.fullmatch(hub_user):
        try:
            claims = json.loads((store.directory / f"{hub_user}.json").read_text()).get("claims", {})
        except (OSError, ValueError):
            claims = {}
    store.cache[hub_user] = (now, claims)
    return claims


def known(hub_user: str) -> bool:
    """Whether the provider has told the hub about ``hub_user`` (they logged in at least once)."""
    store = _store()
    return bool(store is not None and _USER_FILE_RE.fullmatch(hub_user)
                and (store.directory / f"{hub_user}.json").exists())


def claimed_login(claim: str, centre_id: str, hub_user: str) -> str | None:
    """The login that claim ``claim`` (an object keyed by centre id) gives ``hub_user`` at the centre."""
    value = claims_of(hub_user).get(claim)
    if isinstance(value, dict) and centre_id in value:
        return str(value[centre_id])
    return None


def claim_owner(claim: str, centre_id: str, login: str) -> set[str]:
    """Every hub user whose claim gives them ``login`` at the centre."""
    store = _store()
    if store is None or not store.directory.is_dir():
        return set()
    now = time.monotonic()
    mtime = store.directory.stat().st_mtime_ns
    if store.index is None or store.index[1] != mtime or now - store.index[0] > CACHE_SECONDS:
        store.index = (now, mtime, _reindex(store))
    return set(store.index[2].get((claim, centre_id, login), set()))


def _reindex(store: ClaimStore) -> dict:
    """{(claim, centre, login): hub users}, rereading only the claims files that changed since
    the last time (a login rewrites one file; 500 users cost 500 stats, not 500 parses)."""
    seen = {}
    with os.scandir(store.directory) as entries:
        for entry in entries:
            if not entry.name.endswith(".json"):
                continue
            info = entry.stat()  # each write replaces the file: a new inode, mostly a new mtime
            user, stamp = entry.name[:-5], (info.st_ino, info.st_mtime_ns, info.st_size)
            kept = store.per_file.get(user)
            seen[user] = kept if kept is not None and kept[0] == stamp else (stamp, _logins_in(Path(entry.path)))
    store.per_file = seen
    found: dict = {}
    for user, (_, logins) in seen.items():
        for key in logins:
            found.setdefault(key, set()).add(user)
    return found


def _logins_in(path: Path) -> frozenset:
    """The (claim, centre, login) triples of one user's claims file."""
    try:
        claims = json.loads(path.read_text()).get("claims", {})
    except (OSError, ValueError):
        return frozenset()
    return frozenset((name, str(centre), str(claimed)) for name, value in claims.items() if isinstance(value, dict)
                     for centre, claimed in value.items())
