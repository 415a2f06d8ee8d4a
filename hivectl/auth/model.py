"""The vocabulary of grants: roles, the paths they are granted on, and the subjects they are granted to.

Modelled on Proxmox VE's access control (pveum(1), "User Management": an ACL entry is a path, a subject
and a role, and paths form a tree whose entries are inherited downwards), reduced to what hivectl needs:

- three roles, each including the one below it: ``viewer`` (read), ``operator`` (start, stop, console,
  snapshot: issue 11, "Authentication and roles") and ``admin`` (everything);
- paths ``/``, ``/guests``, ``/guests/NAME``, ``/datastores``, ``/datastores/NAME``, ``/switches`` and
  ``/switches/NAME``;
- subjects: a user (``alice``), a group (``@wheel``) or a bearer token (``token:ID``).

Every value is checked here, at the edge, with a ``ConfigError`` that names where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hivectl import validate
from hivectl.errors import ConfigError

Source = validate.Source

ROLES: tuple[str, ...] = ("viewer", "operator", "admin")  # each includes the rights of those before it
RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES, start=1)}
# What the operator role adds to viewer, as issue 11 defines it; the rest of the mutations are admin's.
OPERATOR_OPERATIONS: tuple[str, ...] = ("start", "stop", "console", "snapshot")
KINDS: tuple[str, ...] = ("guests", "datastores", "switches")

TOKEN_ID_RE = re.compile(r"[0-9a-f]{12}")


def check_role(source: Source, key: str, value: str) -> str:
    """One of ``ROLES``."""
    if value not in RANK:
        raise ConfigError(source, key, value, f"expected a role: {', '.join(ROLES)}")
    return value


def at_least(role: str | None, needed: str) -> bool:
    """True when ``role`` includes ``needed`` (None: no role at all)."""
    return role is not None and RANK[role] >= RANK[needed]


def lower(first: str | None, second: str | None) -> str | None:
    """The weaker of two roles (None, no role, is weaker than any)."""
    if first is None or second is None:
        return None
    return first if RANK[first] <= RANK[second] else second


def higher(first: str | None, second: str | None) -> str | None:
    """The stronger of two roles."""
    if first is None:
        return second
    if second is None:
        return first
    return first if RANK[first] >= RANK[second] else second


def check_path(source: Source, key: str, value: str) -> str:
    """``/``, ``/KIND`` or ``/KIND/NAME`` with KIND one of ``KINDS`` and NAME a valid name of that kind."""
    if value == "/":
        return value
    parts = value.split("/")
    if parts[0] != "" or len(parts) not in (2, 3) or parts[1] not in KINDS:
        raise ConfigError(source, key, value, "expected /, /guests[/NAME], /datastores[/NAME] or /switches[/NAME]")
    if len(parts) == 3:
        if parts[1] == "guests":
            validate.guest_name(source, key, parts[2])
        else:
            validate.name(source, key, parts[2], parts[1][:-1] + " name")
    return value


def ancestors(path: str) -> list[str]:
    """``path`` and every path above it, most specific first: ``/guests/web`` → it, ``/guests``, ``/``."""
    found = [path]
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        found.append(path)
    return found


def check_account(source: Source, key: str, value: str, what: str = "user") -> str:
    """A user or group name (not resolved: an ACL may name an account that is created later)."""
    return validate.account(source, key, value, what)


@dataclass(frozen=True, order=True)
class Subject:
    """Who a grant is for: ``kind`` is ``user``, ``group`` or ``token``; ``name`` the account or token id."""

    kind: str
    name: str

    def __str__(self) -> str:
        return {"user": self.name, "group": f"@{self.name}", "token": f"token:{self.name}"}[self.kind]


def parse_subject(source: Source, key: str, value: str) -> Subject:
    """``USER``, ``@GROUP`` or ``token:ID``."""
    if value.startswith("@"):
        return Subject("group", check_account(source, key, value[1:], "group"))
    if value.startswith("token:"):
        token_id = value[len("token:"):]
        if not TOKEN_ID_RE.fullmatch(token_id):
            raise ConfigError(source, key, value, "a token id is 12 lowercase hexadecimal digits")
        return Subject("token", token_id)
    return Subject("user", check_account(source, key, value))
