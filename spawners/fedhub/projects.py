"""Which projects (Slurm charge accounts) a user may charge at a centre, and which one a job
charges when the request names none.

A centre that names a source offers the user's projects there: those the identity provider
lists (``projects: {claim: projects}``), or the Slurm accounts the user's login is associated
with at the centre (``projects: {slurm_associations: true}``: one ``sacctmgr`` read before each
form and spawn, kept for the synchronous checks). A value that is not a valid Slurm account
name (``x; rm``) is never offered. Elsewhere the accounting's charge account is used, as
before: one per user and centre.
"""

from __future__ import annotations

import time

from . import claims, runtime
from .federation import SLURM_NAME_RE, Centre
from .logins import usable_login

ASSOCIATIONS_MAX_AGE = 60.0


async def refresh_associations(centre: Centre, hub_user: str, client, max_age: float = ASSOCIATIONS_MAX_AGE) -> None:
    """Read the login's Slurm associations at ``centre`` if the kept ones are older than ``max_age``."""
    if centre.projects is None or not centre.projects.slurm_associations:
        return
    login = usable_login(centre, hub_user)
    if login is None:
        return
    kept = runtime.current().associations.get((centre.id, login))
    if kept is not None and time.monotonic() - kept[0] < max_age:
        return
    runtime.current().associations[(centre.id, login)] = (time.monotonic(), await client.associations(login))


def projects_at(centre: Centre, hub_user: str) -> list[str] | None:
    """The user's projects at ``centre`` in the source's order; None: the centre offers no choice."""
    if centre.projects is None:
        return None
    if centre.projects.slurm_associations:
        login = usable_login(centre, hub_user)
        return list(runtime.current().associations.get((centre.id, login), (0.0, []))[1]) if login else []
    value = claims.claims_of(hub_user).get(centre.projects.claim)
    names = value.get(centre.id, []) if isinstance(value, dict) else []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        return []
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and SLURM_NAME_RE.fullmatch(n)))


def default_charge_account(centre: Centre, hub_user: str) -> str | None:
    """What a job charges when the request names no project: the first project, else the
    accounting's charge account (None: Slurm's default for the login)."""
    projects = projects_at(centre, hub_user)
    if projects:
        return projects[0]
    return centre.accounting.charge_account(hub_user) if centre.accounting else None
