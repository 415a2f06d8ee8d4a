"""When a job runs next: every ``every`` seconds after its last attempt, sooner after a failure.

Pure (the caller passes ``now``), so that the tests drive time instead of sleeping. After ``n`` failures in
a row the job is retried after ``RETRY_FIRST * 2**(n-1)`` seconds, at most its interval: a host that is
briefly unreachable is retried soon, one that stays down is not hammered.
"""

from __future__ import annotations

import re

from hivectl.errors import ConfigError

RETRY_FIRST = 30.0
MIN_EVERY = 60
MAX_EVERY = 366 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"(\d{1,9})([smhd]?)")


def parse_every(text: str, source: str | None = None, key: str = "--every") -> int:
    """``15m``, ``1h``, ``90s``, ``1d`` or plain seconds, from one minute (cron's step) to a year."""
    found = _EVERY.fullmatch(text.strip())
    if found is None:
        raise ConfigError(source, key, text, "expected a number with s, m, h or d (15m, 1h)")
    seconds = int(found.group(1)) * _UNITS[found.group(2) or "s"]
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        raise ConfigError(source, key, text, "expected an interval from 1m to 366d")
    return seconds


def every_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def retry_delay(failures: int, every: int) -> float:
    """Seconds after the last failed attempt before the next one."""
    if failures <= 0:
        return float(every)
    return min(float(every), RETRY_FIRST * float(2 ** min(failures - 1, 30)))


def next_due(every: int, last_attempt: float | None, failures: int) -> float:
    """The time the job is next due (0: now, it never ran)."""
    if last_attempt is None:
        return 0.0
    return last_attempt + retry_delay(failures, every)


def is_due(every: int, last_attempt: float | None, failures: int, now: float) -> bool:
    # a run that starts a little early (cron fires each minute on the minute, the run took a few seconds)
    # still counts: 5 s of slack, far below the shortest interval
    return now + 5 >= next_due(every, last_attempt, failures)
