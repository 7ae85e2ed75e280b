"""Which projects (Slurm charge accounts) a user may charge at a centre, and which one a job
charges when the request names none.

A centre that names a source (``projects: {claim: projects}`` in the federation file) offers the
projects the identity provider lists for the user there; a value that is not a valid Slurm
account name (``x; rm``) is never offered. Elsewhere the accounting's charge account is used,
as before: one per user and centre.
"""

from __future__ import annotations

from . import claims
from .federation import SLURM_NAME_RE, Centre


def projects_at(centre: Centre, hub_user: str) -> list[str] | None:
    """The user's projects at ``centre`` in the provider's order; None: the centre offers no choice."""
    if centre.projects is None:
        return None
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
