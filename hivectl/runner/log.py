"""The per-guest log ``NAME/vm-bhyve.log``: vm-bhyve's file name, ISO-8601 lines, 1 MiB rotation.

Administrators already tail this file, so it keeps vm-bhyve's name and rotation (one ``.0.gz``
generation). Secrets never reach it: callers log argv only after the driver moved secrets into files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hivectl.model.layout import VM_LOG
from hivectl.safety import paths

ROTATE_AT = 1 << 20


def rotate(directory: Path) -> None:
    path = directory / VM_LOG
    try:
        if path.stat().st_size < ROTATE_AT:
            return
    except FileNotFoundError:
        return
    import gzip  # with shutil's compression modules: only when the log is rotated
    import shutil

    # Both files are opened without following symlinks (a planted link must not make root write elsewhere).
    src_fd = paths.open_file(directory, path)
    dst_fd = paths.open_file(directory, directory / f"{VM_LOG}.0.gz", write=True, truncate=True, create=True,
                             mode=0o640)
    with os.fdopen(src_fd, "rb") as src, os.fdopen(dst_fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as dst:
        shutil.copyfileobj(src, dst)
    paths.unlink(directory, path)


def write(directory: Path, message: str) -> None:
    """Append one line (opened per write so that rotation and concurrent writers stay simple)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    line = f"{stamp}: {message}\n"
    paths.write_file(directory, directory / VM_LOG, line.encode("utf-8", "replace"), 0o640, append=True)
