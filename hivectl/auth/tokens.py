"""Bearer tokens for the daemon's TCP listener: random secrets kept only as hashes.

A token is ``hvt.ID.SECRET``: ``ID`` (12 hex digits) finds the record, ``SECRET`` (``secrets.token_urlsafe``,
256 bits) proves possession. Only SHA-256 of ``ID.SECRET`` is stored: a secret of 256 random bits needs no
slow password hash to resist guessing (there is nothing to guess from), and a stolen file gives no usable
token. Comparison is constant-time (``hmac.compare_digest``). The characters are those RFC 6750 allows in
a bearer token (letters, digits, ``-``, ``_``, ``.``).

The records live in ``vm_dir/.config/tokens.json``, mode 0600, edited under its lock and replaced
atomically (``hivectl.rcfile.atomic_write_bytes``). A record holds the owner's uid, an optional
restriction (a role on a path: the token then holds at most that, and never more than its owner:
``hivectl.auth.policy``), its creation time and its expiry. The secret is returned once, by ``create``,
and appears nowhere else: not in the file, not in ``list``, not in any error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hivectl.auth.errors import Unauthorized
from hivectl.auth.model import check_path, check_role
from hivectl.auth.principal import Principal
from hivectl.errors import ConfigError, HivectlError, NotFound, UsageError

FILE_NAME = "tokens.json"
PREFIX = "hvt"
DEFAULT_EXPIRY = "90d"
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EXPIRY_RE = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
MAX_LIFETIME = 10 * 365 * 86400
_BEARER_RE = re.compile(r"hvt\.([0-9a-f]{12})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Token:
    """One token's record (never its secret)."""

    id: str
    uid: int
    sha256: str
    created: int
    expires: int | None
    role: str | None = None
    path: str | None = None

    @property
    def restricted(self) -> bool:
        """A restricted token holds its own grants (at most its owner's); an unrestricted one its owner's."""
        return self.role is not None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def as_json(self) -> dict[str, Any]:
        """What ``token list --json`` shows: everything but the hash."""
        from hivectl.auth.principal import account_name

        return {"id": self.id, "uid": self.uid, "owner": account_name(self.uid) or f"#{self.uid}",
                "role": self.role, "path": self.path, "created": self.created, "expires": self.expires,
                "expired": self.expired()}


def tokens_path(vm_dir: Path) -> Path:
    return Path(vm_dir) / ".config" / FILE_NAME


def parse_expiry(source: str | None, key: str, value: str) -> int | None:
    """``30d``, ``12h``, ``90m``, ``2w`` → seconds; ``never`` → None."""
    if value == "never":
        return None
    match = _EXPIRY_RE.fullmatch(value)
    if match is None:
        raise ConfigError(source, key, value, "expected a lifetime such as 30d, 12h, 90m or 2w, or 'never'")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_LIFETIME:
        raise ConfigError(source, key, value, "a token lives at most 10 years (or 'never')")
    return seconds


def _digest(token_id: str, secret: str) -> str:
    return hashlib.sha256(f"{token_id}.{secret}".encode("ascii")).hexdigest()


def _record(source: Path, raw: object) -> Token:
    """One record of the file, every field checked (a hand-edited file is refused, not half-trusted)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, "token", repr(raw)[:60], "expected an object")
    try:
        token = Token(id=str(raw["id"]), uid=int(raw["uid"]), sha256=str(raw["sha256"]),
                      created=int(raw["created"]), expires=None if raw.get("expires") is None else int(raw["expires"]),
                      role=raw.get("role"), path=raw.get("path"))
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(source, "token", str(raw.get("id", "?")), f"malformed record ({error})") from None
    if not re.fullmatch(r"[0-9a-f]{12}", token.id) or not re.fullmatch(r"[0-9a-f]{64}", token.sha256):
        raise ConfigError(source, "token", token.id, "malformed id or hash")
    if (token.role is None) != (token.path is None):
        raise ConfigError(source, "token", token.id, "a restriction has both a role and a path")
    if token.role is not None and token.path is not None:
        check_role(source, f"token {token.id} role", token.role)
        check_path(source, f"token {token.id} path", token.path)
    return token


def load(vm_dir: Path) -> list[Token]:
    """Every token record of ``vm_dir`` (none without the file)."""
    path = tokens_path(vm_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(path, "tokens", "", f"not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise ConfigError(path, "tokens", "", 'expected {"tokens": [...]}')
    return [_record(path, raw) for raw in data["tokens"]]


def _save(vm_dir: Path, tokens: list[Token]) -> None:
    from hivectl.rcfile import atomic_write_bytes

    text = json.dumps({"tokens": [asdict(t) for t in tokens]}, indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(tokens_path(vm_dir), text.encode("ascii"), 0o600, private=True)


def create(vm_dir: Path, uid: int, role: str | None = None, path: str | None = None,
           expires: str = DEFAULT_EXPIRY, now: float | None = None) -> tuple[Token, str]:
    """A new token of ``uid``: its record (stored) and its bearer string (returned once, stored nowhere)."""
    from hivectl.safety.filelock import locked

    if path is not None and role is None:
        raise UsageError("token create: --path needs --role (the role the token holds on that path)")
    if role is not None:
        check_role(None, "--role", role)
        path = check_path(None, "--path", path or "/")
    lifetime = parse_expiry(None, "--expires", expires)
    file = tokens_path(vm_dir)
    if not file.parent.is_dir():
        raise NotFound(f"{file.parent} does not exist: run 'hivectl init' first")
    created = int(time.time() if now is None else now)
    with locked(file):
        tokens = load(vm_dir)
        taken = {t.id for t in tokens}
        token_id = secrets.token_hex(6)
        while token_id in taken:
            token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = Token(token_id, uid, _digest(token_id, secret), created,
                      None if lifetime is None else created + lifetime, role, path)
        _save(vm_dir, [*tokens, token])
    return token, f"{PREFIX}.{token_id}.{secret}"


def get(vm_dir: Path, token_id: str) -> Token:
    for token in load(vm_dir):
        if token.id == token_id:
            return token
    raise NotFound(f"token {token_id} does not exist (see 'hivectl token list')")


def revoke(vm_dir: Path, token_id: str) -> Token:
    """Delete the token's record (and every grant to it): the bearer is refused from the next request."""
    from hivectl.auth import acl
    from hivectl.auth.model import Subject
    from hivectl.safety.filelock import locked

    file = tokens_path(vm_dir)
    with locked(file):
        tokens = load(vm_dir)
        found = [t for t in tokens if t.id == token_id]
        if not found:
            raise NotFound(f"token {token_id} does not exist (see 'hivectl token list')")
        _save(vm_dir, [t for t in tokens if t.id != token_id])
    acl.remove_subject(vm_dir, Subject("token", token_id))
    return found[0]


def authenticate(vm_dir: Path, bearer: str, now: float | None = None) -> Principal:
    """The principal a bearer token stands for; ``Unauthorized`` (never echoing it) when it stands for none."""
    match = _BEARER_RE.fullmatch(bearer.strip())
    if match is None:
        raise Unauthorized("malformed bearer token (expected hvt.ID.SECRET)")
    token_id, secret = match.groups()
    try:
        tokens = load(vm_dir)
    except HivectlError:
        raise Unauthorized("the token store cannot be read: see the daemon's log") from None
    record = next((t for t in tokens if t.id == token_id), None)
    # The digest is compared even for an unknown id, so the time taken does not tell known ids apart.
    expected = record.sha256 if record is not None else "0" * 64
    if not hmac.compare_digest(_digest(token_id, secret), expected) or record is None:
        raise Unauthorized(f"token {token_id} is not valid")
    if record.expired(now):
        raise Unauthorized(f"token {token_id} expired")
    principal = Principal.for_uid(record.uid, record.id)
    if principal.user is None:
        raise Unauthorized(f"token {token_id}: its owner (uid {record.uid}) no longer exists")
    return principal
