"""The unit tier: the federation model, option rules, placement, forms, state, Slurm's argv and
parsers, class rules, the import layers. No root, no Slurm, no hub: `make unit`, well under a
minute. The integration and browser tiers (tests/*.py) run the same rules against real parts."""

from __future__ import annotations

import pytest

from fedhub import logins, runtime
from helpers.testbed import LOCAL_LOGINS


@pytest.fixture
def unix_users(monkeypatch):
    """The logins the unit tests' local centre maps hub users to, as ordinary Unix accounts.

    The integration tier creates them for real (root); here the account database is the one seam
    replaced, so the login rules run unchanged without root. Every other name is looked up on
    this machine as usual (root stays uid 0, a name nobody has stays missing)."""
    real = logins.local_account
    made = {name: logins.UnixAccount(name, 20001 + i, 20001 + i, f"/home/{name}", (20001 + i,))
            for i, name in enumerate(LOCAL_LOGINS)}

    def account(name: str):
        return made.get(name) or real(name)

    monkeypatch.setattr(logins, "local_account", account)
    monkeypatch.setattr(logins, "ordinary_uids", lambda *a: (1000, 60000))
    return LOCAL_LOGINS



@pytest.fixture(autouse=True)
def fresh_runtime():
    """Each unit test starts with nothing shared: no cached federation, claims or watchers."""
    return runtime.fresh()
