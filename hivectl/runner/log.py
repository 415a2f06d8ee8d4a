"""The per-guest log ``NAME/vm-bhyve.log``: vm-bhyve's file name, ISO-8601 lines, 1 MiB rotation.

Administrators already tail this file, so it keeps vm-bhyve's name and rotation (one ``.0.gz``
generation). Secrets never reach it: callers log argv only after the driver moved secrets into files.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from pathlib import Path

from hivectl.model.layout import VM_LOG

ROTATE_AT = 1 << 20


def rotate(directory: Path) -> None:
    path = directory / VM_LOG
    try:
        if path.stat().st_size < ROTATE_AT:
            return
    except FileNotFoundError:
        return
    with path.open("rb") as src, gzip.open(directory / f"{VM_LOG}.0.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()


def write(directory: Path, message: str) -> None:
    """Append one line (opened per write so that rotation and concurrent writers stay simple)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    line = f"{stamp}: {message}\n"
    fd = os.open(directory / VM_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode("utf-8", "replace"))
    finally:
        os.close(fd)
