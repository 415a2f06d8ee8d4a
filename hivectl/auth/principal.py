"""Who is asking: a user id, the token it came through (if any), and its groups when first needed.

The daemon builds one per request (the unix socket's peer credentials, or the owner of a bearer token:
``hivectl.auth.tokens.authenticate``); the CLI builds one for the user that invoked it through sudo or
doas (``hivectl.auth.invoker``). Groups are resolved from the user database (getpwuid(3),
getgrouplist(3)) only when a group grant has to be matched, so a request that is decided by a user
grant (or by uid 0) reads no group database.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Principal:
    """A user (``uid``), acting directly or through the token ``token_id``; ``name`` is for people."""

    uid: int
    token_id: str | None = None
    name: str = ""

    @classmethod
    def for_uid(cls, uid: int, token_id: str | None = None) -> Principal:
        """The principal of ``uid`` with its login name (``#UID`` when the user database has none)."""
        return cls(uid, token_id, account_name(uid) or f"#{uid}")

    @cached_property
    def user(self) -> str | None:
        """The login name of ``uid``, or None when the user database does not know it."""
        return account_name(self.uid)

    @cached_property
    def groups(self) -> frozenset[str]:
        """Names of the user's groups: its primary group and every group that lists it (getgrouplist(3))."""
        try:
            entry = pwd.getpwuid(self.uid)
        except KeyError:
            return frozenset()
        names: set[str] = set()
        for gid in os.getgrouplist(entry.pw_name, entry.pw_gid):
            try:
                names.add(grp.getgrgid(gid).gr_name)
            except KeyError:
                continue
        return frozenset(names)

    def __str__(self) -> str:
        """How audit lines and refusals name the principal: ``alice`` or ``alice (token 0123456789ab)``."""
        who = self.name or f"#{self.uid}"
        return f"{who} (token {self.token_id})" if self.token_id else who


def account_name(uid: int) -> str | None:
    """The login name of ``uid`` (getpwuid(3)), None when there is none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
