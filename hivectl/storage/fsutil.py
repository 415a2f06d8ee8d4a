"""Small file-system helpers shared by the storage modules (binary atomic writes, safe file names)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from hivectl.errors import ConfigError

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}")


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` the way ``rcfile.atomic_write`` does for text (temp, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def file_name(source: str | Path | None, key: str, value: str) -> str:
    """A plain file name that becomes a path in a store: no directories, no leading dot, no odd bytes."""
    if not _FILE_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(source, key, value, "expected a plain file name (letters, digits, '.', '_', '-', '+', "
                                              "'~'; not starting with '.'; no '/' or '..')")
    return value


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
