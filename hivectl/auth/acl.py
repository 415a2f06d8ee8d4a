"""The access control list: ``vm_dir/.config/acl.conf``, one grant ``ROLE PATH SUBJECT`` per line.

A plain text file so that an administrator can read and review it (and keep it in version control);
``#`` starts a comment. It is read strictly: a line that does not parse is an error naming the file, the
line and the value, never a grant silently dropped (a dropped line could be a narrowing one, see
``hivectl.auth.policy``). Edits hold the file's lock across read, change and write
(``hivectl.safety.filelock``) and replace the file atomically, readable by its owner only: who may do
what is the daemon's and root's business, not every local user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hivectl.auth.model import Subject, check_path, check_role, parse_subject
from hivectl.errors import ConfigError, Conflict, NotFound

FILE_NAME = "acl.conf"
HEADER = "# hivectl access control list: ROLE PATH SUBJECT (docs/security.md); edit with 'hivectl acl'\n"


@dataclass(frozen=True, order=True)
class Grant:
    """``role`` on ``path`` (and below it) for ``subject``."""

    role: str
    path: str
    subject: Subject

    def line(self) -> str:
        return f"{self.role} {self.path} {self.subject}"

    def as_json(self) -> dict[str, str]:
        return {"role": self.role, "path": self.path, "subject": str(self.subject)}


def acl_path(vm_dir: Path) -> Path:
    return Path(vm_dir) / ".config" / FILE_NAME


def make_grant(role: str, path: str, subject: str, source: str | Path | None = None) -> Grant:
    """A grant from its three words, each checked (``source`` names where they came from)."""
    return Grant(check_role(source, "role", role), check_path(source, "path", path),
                 parse_subject(source, "subject", subject))


def parse(text: str, source: str | Path) -> list[Grant]:
    """Every grant of the file's ``text``; the first malformed line is an error naming it."""
    grants: list[Grant] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        where = f"{source}:{number}"
        if len(words) != 3:
            raise ConfigError(where, "grant", line, "expected three words: ROLE PATH SUBJECT")
        grant = make_grant(words[0], words[1], words[2], where)
        if grant not in grants:
            grants.append(grant)
    return grants


def load(vm_dir: Path) -> list[Grant]:
    """The grants of ``vm_dir``; no file is no grant (only uid 0 has rights then)."""
    path = acl_path(vm_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse(text, path)


def _render(grants: list[Grant]) -> str:
    return HEADER + "".join(f"{g.line()}\n" for g in grants)


def _edit(vm_dir: Path, change: str, grant: Grant) -> None:
    from hivectl.rcfile import atomic_write_bytes
    from hivectl.safety.filelock import locked

    path = acl_path(vm_dir)
    if not path.parent.is_dir():
        raise NotFound(f"{path.parent} does not exist: run 'hivectl init' first")
    with locked(path):
        grants = load(vm_dir)
        if change == "add":
            if grant in grants:
                raise Conflict(f"{path}: {grant.line()} is granted already")
            grants.append(grant)
        else:
            if grant not in grants:
                raise NotFound(f"{path}: no grant {grant.line()}")
            grants.remove(grant)
        atomic_write_bytes(path, _render(grants).encode("utf-8"), 0o600, private=True)


def add(vm_dir: Path, grant: Grant) -> None:
    """Add ``grant`` (a grant that exists already is a conflict, so a typo is not silently a no-op)."""
    _edit(vm_dir, "add", grant)


def remove(vm_dir: Path, grant: Grant) -> None:
    """Remove ``grant`` exactly as it was granted."""
    _edit(vm_dir, "remove", grant)


def remove_subject(vm_dir: Path, subject: Subject) -> int:
    """Remove every grant to ``subject`` (a revoked token's); returns how many there were."""
    from hivectl.rcfile import atomic_write_bytes
    from hivectl.safety.filelock import locked

    path = acl_path(vm_dir)
    if not path.exists():
        return 0
    with locked(path):
        grants = load(vm_dir)
        kept = [g for g in grants if g.subject != subject]
        if len(kept) != len(grants):
            atomic_write_bytes(path, _render(kept).encode("utf-8"), 0o600, private=True)
        return len(grants) - len(kept)
