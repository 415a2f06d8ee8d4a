"""One line of JSON that must be an object: how a peer's answer is read, whoever the peer is.

QEMU's monitor (hivectl/drivers/qemu/qmp.py) and the far end of a migration (hivectl/migrate/wire.py)
both answer one JSON object per line; a line that is not JSON, or is JSON but not an object, is the
peer's fault and becomes the caller's own error type with the first 200 bytes of what came, so the user
sees what the peer said instead of a traceback. Imports nothing of hivectl (a leaf, rank 0).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def json_object(line: bytes | str, fail: Callable[[str], BaseException], said: str) -> dict[str, Any]:
    """``line`` decoded as a JSON object, else ``fail(message)`` raised; ``said`` starts that message
    (``"the other host answered"``, ``"/vm/web/qmp.sock: QEMU sent"``)."""
    try:
        value = json.loads(line)
    except ValueError:
        raise fail(f"{said} something that is not JSON: {line[:200]!r}") from None
    if not isinstance(value, dict):
        raise fail(f"{said} {value!r}, not an object")
    return value
