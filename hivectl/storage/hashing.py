"""A reader that computes the SHA-256 of every byte read through it.

``backup`` hashes each file as ``tarfile`` copies it into the archive, and ``restore``'s archive check
hashes the whole archive's bytes as ``tarfile`` reads them (against ``FILE.sha256``): both need the digest
of exactly the bytes that went through, computed in the same single pass. One class serves both.

It is a ``RawIOBase`` that implements ``readinto`` (the one method ``RawIOBase`` builds ``read``,
``readall`` and buffering on, see the ``io`` module's documentation), so it works read directly, with
``read(-1)``, or wrapped in ``io.BufferedReader`` as decompressors and ``tarfile`` do.
"""

from __future__ import annotations

import hashlib
import io
from typing import IO, Any


class HashingReader(io.RawIOBase):
    """Reads from ``raw`` and adds what it returns to ``hash`` (a ``hashlib.sha256``)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.raw.read(len(view))
        view[: len(data)] = data
        self.hash.update(data)
        return len(data)
