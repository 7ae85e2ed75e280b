"""Which login a hub user has at a centre, and whether FedHub may act as it.

The federation file names the login: an explicit map, else the identity provider's claim (when
the centre names one), else a template. Before the hub runs anything as that login it checks,
in one place for the form, the REST API, placement and jobs:

- the login exists (local centres: a Unix account on the hub's machine);
- it is never uid 0 or root, even when mapped explicitly;
- a template or a claim never yields a system account (uid outside ``min_uid`` .. the system's
  ``UID_MAX``; ``min_uid`` is by default the system's ``UID_MIN``, and ``nobody`` is above
  ``UID_MAX``), the centre's query user, or a login mapped to another hub user; a claim never
  yields another known user's template login there, nor a login another user claims too. Only
  an explicit map entry may name a system account or the query user.

For ssh centres the uid lives at the centre: before the hub acts as a login there it asks the
login node (``getent passwd`` over the hub's query connection, ``slurm.routes``) and refuses
uid 0 and a uid below ``min_uid`` (default 1000 at ssh centres) unless the map names the login;
what it learnt is kept here for ``CACHE_SECONDS``, so the form and the REST API say so too.

Account lookups are cached for ``CACHE_SECONDS`` so that the event loop does not call into
NSS (which may be LDAP) for every scheduler command.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import time
from dataclasses import dataclass

from . import claims, runtime
from .federation import LOGIN_RE, Centre, LocalScheduler
from .i18n import _

CACHE_SECONDS = 60.0
_DEFAULT_UID_RANGE = (1000, 60000)
SSH_MIN_UID = 1000  # at an ssh centre whose logins name no min_uid: the usual UID_MIN


def remote_uid(node: str, login: str) -> tuple[bool, int | None]:
    """(known, uid) of ``login`` at an ssh centre's login node (``host:port``), as last read
    (None: no such account)."""
    kept = runtime.current().remote_uids.get((node, login))
    if kept is None or time.monotonic() - kept[0] >= CACHE_SECONDS:
        return False, None
    return True, kept[1]


def remember_remote_uid(node: str, login: str, uid: int | None) -> None:
    runtime.current().remote_uids[(node, login)] = (time.monotonic(), uid)


def remote_refusal(uid: int | None, min_uid: int | None) -> str | None:
    """Why a login with ``uid`` at an ssh centre may not be used (None: it may)."""
    low = min_uid if min_uid is not None else SSH_MIN_UID
    if uid is None:
        return _("there is no such account at the centre; ask the centre for one")
    if uid == 0:
        return _("FedHub never acts as uid 0")
    if uid < low:
        return _("that is a system account at the centre (uid {uid} is below {low})").format(uid=uid, low=low)
    return None


class NoLogin(ValueError):
    """The hub user has no login FedHub may use at this centre; ``str()`` says why, for users."""

    def __init__(self, centre: Centre, login: str | None, reason: str):
        self.centre = centre
        self.login = login
        self.reason = reason
        message = _("you have no usable login at {centre} (looked for login {login}): {reason}") if login else \
            _("you have no usable login at {centre}: {reason}")
        super().__init__(message.format(centre=centre.name, login=repr(login), reason=reason))


@dataclass(frozen=True)
class UnixAccount:
    """What the hub needs to run a command as a local login."""

    name: str
    uid: int
    gid: int
    home: str
    groups: tuple[int, ...]


def local_account(name: str) -> UnixAccount | None:
    """The Unix account ``name`` on the hub's machine (None if there is none), cached."""
    now = time.monotonic()
    cached = runtime.current().accounts.get(name)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        account = None
    else:
        account = UnixAccount(name, pw.pw_uid, pw.pw_gid, pw.pw_dir, tuple(os.getgrouplist(name, pw.pw_gid)))
    runtime.current().accounts[name] = (now, account)
    return account


@functools.lru_cache(maxsize=4)
def ordinary_uids(login_defs: str = "/etc/login.defs") -> tuple[int, int]:
    """(UID_MIN, UID_MAX): the uids of ordinary users on this machine (login.defs, else 1000-60000),
    read once per process."""
    found = dict(zip(("UID_MIN", "UID_MAX"), _DEFAULT_UID_RANGE))
    try:
        with open(login_defs) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in found and parts[1].isdigit():
                    found[parts[0]] = int(parts[1])
    except OSError:
        pass
    return found["UID_MIN"], found["UID_MAX"]


def login_at(centre: Centre, hub_user: str) -> str:
    """The login ``hub_user`` acts as at ``centre``; NoLogin (with the reason) if none may be used."""
    mapping = centre.logins
    login, explicit = mapping.login_for(hub_user)
    claimed = None if explicit or not mapping.claim else claims.claimed_login(mapping.claim, centre.id, hub_user)
    if claimed is not None:
        login = claimed
    if login is None:
        if mapping.claim and not claims.known(hub_user):
            raise NoLogin(centre, None, _("only the federation's login gives logins there, and {user} has never logged in "
                                          "to this hub: they log in once, then the server can be started").format(user=hub_user))
        if mapping.claim:
            raise NoLogin(centre, None, _("the federation's records give you no login there"))
        raise NoLogin(centre, None, _("the centre maps only listed users, and you are not listed"))
    if not LOGIN_RE.fullmatch(login):
        raise NoLogin(centre, login, _("that is not a valid login name"))
    if login == "root":
        raise NoLogin(centre, login, _("FedHub never acts as root"))
    if not explicit:
        if login == centre.query_user:
            raise NoLogin(centre, login, _("that is the hub's own query login there"))
        owner = next((u for u, mapped in mapping.map.items() if mapped == login), None)
        if owner is None and claimed is not None:  # a claim never takes another user's login
            made_for = template_user(mapping.template, login)
            if made_for not in (None, hub_user):
                # the template's login of another name, whether or not that person has logged
                # in yet: a claim must not take bob's login before bob ever arrives
                owner = made_for
            elif claims.claim_owner(mapping.claim, centre.id, login) - {hub_user}:
                owner = "another claimant"
        if owner is not None:
            raise NoLogin(centre, login, _("that login belongs to another user"))
    if not isinstance(centre.scheduler, LocalScheduler) and not explicit:
        known, uid = remote_uid(f"{centre.scheduler.host}:{centre.scheduler.port}", login)
        reason = remote_refusal(uid, mapping.min_uid) if known else None
        if reason is not None:
            raise NoLogin(centre, login, reason)
    if isinstance(centre.scheduler, LocalScheduler):
        account = local_account(login)
        if account is None:
            raise NoLogin(centre, login, _("there is no such account; ask the centre for one"))
        if account.uid == 0:
            raise NoLogin(centre, login, _("FedHub never acts as uid 0"))
        low, high = ordinary_uids()
        low = centre.logins.min_uid if centre.logins.min_uid is not None else low
        if not low <= account.uid <= high and not explicit:
            raise NoLogin(centre, login, _("that is a system account (uid {uid} is outside {low}-{high})").format(
                uid=account.uid, low=low, high=high))
    return login


def template_user(template: str | None, login: str) -> str | None:
    """The hub user name from which ``template`` makes ``login`` (None if it makes it from none)."""
    if not template or "{username}" not in template:
        return None
    before, _sep, after = template.partition("{username}")
    found = re.fullmatch(re.escape(before) + "(.+)" + re.escape(after), login)
    return found.group(1) if found else None


def usable_login(centre: Centre, hub_user: str) -> str | None:
    """``login_at`` for callers that only need to know (the form, placement): None when there is none."""
    try:
        return login_at(centre, hub_user)
    except NoLogin:
        return None
