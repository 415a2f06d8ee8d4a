"""Names of the hidden directories (and ZFS datasets) a guest is built in or removed through.

A guest must be complete or absent at every instant, even if hivectl is killed (issue 10, "atomic
operations"): ``create``, ``clone``, ``restore`` and ``import`` build the guest under a *staging* name and
publish it with one rename(2) (``zfs rename`` on ZFS); ``destroy`` first renames the guest to a *tombstone*
name and only then removes it. Both names start with a dot, so ``list`` (which skips dot entries, as
vm-bhyve's ``ls`` loop over ``$vm_dir`` does) never shows them, and they cannot be guest names (a guest
name starts with a letter or digit: ``hivectl/validate.py``).

The shape is ``.hivectl-staging-NAME-RAND`` and ``.hivectl-tombstone-NAME-RAND``: ``NAME`` is the guest
the entry belongs to (so the next command touching that name can find and collect it) and ``RAND`` eight
hex digits that keep two attempts apart. Every module that stages or tombstones a guest takes its names
from here; ``hivectl/staging.py`` holds the actions that make, publish and collect them.
"""

from __future__ import annotations

import secrets

from hivectl.patterns import Pattern

STAGING_PREFIX = ".hivectl-staging-"
TOMBSTONE_PREFIX = ".hivectl-tombstone-"
KINDS = {"staging": STAGING_PREFIX, "tombstone": TOMBSTONE_PREFIX}

_ENTRY_RE = Pattern(r"\.hivectl-(staging|tombstone)-(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,62})-[0-9a-f]{8}")


def staging_name(guest: str) -> str:
    """A fresh hidden name to build ``guest`` under (directory entry or last dataset component)."""
    return f"{STAGING_PREFIX}{guest}-{secrets.token_hex(4)}"


def tombstone_name(guest: str) -> str:
    """A fresh hidden name to move ``guest`` to before removing it."""
    return f"{TOMBSTONE_PREFIX}{guest}-{secrets.token_hex(4)}"


def parse(entry: str) -> tuple[str, str] | None:
    """``("staging" | "tombstone", guest)`` for a hidden entry made here, ``None`` for anything else."""
    match = _ENTRY_RE.fullmatch(entry)
    if match is None:
        return None
    return match.group(1), match.group("name")


def is_hidden_entry(entry: str) -> bool:
    """True for a staging or tombstone entry (of any guest)."""
    return parse(entry) is not None
