"""The time a snapshot's or backup's name carries, for ``hivectl retention explain NAMES...``.

Names made by the tools hivectl replaces or works with carry their time: vm-bhyve's default snapshot name
``YYYY-MM-DD-HH:MM:SS`` (local time, vm-bhyve's ``vm snapshot``), the cookbook's vm-backup.sh
``backup-YYYYMMDD``, hivectl's backups ``...YYYYmmddTHHMMSS...Z`` (UTC, ``Z``), ISO 8601 stamps. The first
date in the name counts, with the time of day that follows it when there is one; a name with no date is an
error naming it, never a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from hivectl.errors import ConfigError

_STAMP = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:[-T_ .]?(\d{2}):?(\d{2})(?::?(\d{2}))?(\.\d+)?(Z)?)?(?!\d)")


def time_of(name: str, tz: tzinfo | None = None, key: str = "SNAPSHOT") -> float:
    """Seconds since the epoch of the stamp in ``name``; local time (or ``tz``) unless it ends in ``Z``."""
    found = _STAMP.search(name)
    if found is None:
        raise ConfigError(None, key, name, "no date in the name (YYYY-MM-DD or YYYYMMDD, then an optional "
                                           "HH:MM[:SS]); use --guest NAME to read the snapshots' creation times")
    year, month, day, hour, minute, second, _fraction, zulu = found.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                          tzinfo=UTC if zulu else tz)
    except ValueError as error:
        raise ConfigError(None, key, name, f"not a date: {error}") from None
    return moment.timestamp()
