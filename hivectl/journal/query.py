"""Reading the logs for ``hivectl events``, ``hivectl audit``, the API and the daemon: filters, ``--since``.

``--since`` of the audit log takes a sequence number (``120``), a UTC time (``2026-12-03``,
``2026-12-03T12:00``, ``2026-12-03T12:00:30``, with an optional ``Z``) or an age (``30s``, ``15m``,
``2h``, ``7d``). Record times are fixed-width RFC 3339 UTC text, so a time compares as text.
"""

from __future__ import annotations

import time

from hivectl.errors import UsageError
from hivectl.journal import audit_path, events_path
from hivectl.journal.log import Journal

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def parse_since(value: str | int | None, option: str = "--since") -> tuple[int, str]:
    """``(seq, time)``: read records after sequence number ``seq`` and at or after ``time`` (text)."""
    if value is None or value == "":
        return 0, ""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise UsageError(f"{option} {value!r}: a sequence number is 0 or more")
        return value, ""
    text = str(value).strip()
    if text.isdigit():
        return int(text), ""
    if len(text) > 1 and text[:-1].isdigit() and text[-1] in _UNITS:
        stamp = time.time() - int(text[:-1]) * _UNITS[text[-1]]
        return 0, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
    bare = text[:-1] if text.endswith("Z") else text
    for form in _TIME_FORMATS:
        try:
            parsed = time.strptime(bare, form)
        except ValueError:
            continue
        return 0, time.strftime("%Y-%m-%dT%H:%M:%S", parsed)
    raise UsageError(f"{option} {value!r}: expected a sequence number, a UTC time (2026-12-03T12:00) or an age "
                     "(30s, 15m, 2h, 7d)")


def parse_seq(value: str | int | None, option: str = "--since") -> int:
    """A sequence number (the event stream's ``since``): 0 or more."""
    if value is None or value == "":
        return 0
    text = str(value).strip()
    if not text.isdigit():
        raise UsageError(f"{option} {value!r}: expected a sequence number (0 or more)")
    return int(text)


def events_log(config_dir: str) -> Journal:
    return Journal(events_path(config_dir))


def audit_log(config_dir: str) -> Journal:
    return Journal(audit_path(config_dir), mode=0o600)


def about_guest(record: dict[str, Any], guest: str) -> bool:
    """True if an event or audit line concerns guest ``guest`` (its target, or one of its targets)."""
    path = f"/guests/{guest}"
    target = record.get("target")
    return target == path or (isinstance(target, list) and path in target)


def audit_lines(config_dir: str, guest: str | None = None, since: str | int | None = None) -> Iterator[dict[str, Any]]:
    """The retained audit lines, oldest first, of one guest and/or after ``since`` (see parse_since)."""
    seq, after = parse_since(since)
    for line in audit_log(config_dir).read(seq):
        if after and str(line.get("time", "")) < after:
            continue
        if guest is not None and not about_guest(line, guest):
            continue
        yield line


def events(config_dir: str, since: str | int | None = None, guest: str | None = None) -> Iterator[dict[str, Any]]:
    """The retained events after sequence number ``since``, oldest first."""
    for event in events_log(config_dir).read(parse_seq(since)):
        if guest is None or about_guest(event, guest):
            yield event
