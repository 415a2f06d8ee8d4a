"""The one hashing reader of backup and restore: every way ``tarfile`` and the decompressors read it.

``backup`` hands it to ``tarfile.addfile`` (reads of a given size), the archive check and ``restore``
wrap it in decompressors and ``tarfile.open`` (``readinto`` through ``io.BufferedReader``) and drain it
(``read`` until empty). Each way must return the file's bytes unchanged and digest exactly those bytes.
The reader ``backup`` had before (``read`` only) failed the ``readinto`` case with NotImplementedError.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hivectl.storage.hashing import HashingReader

DATA = os.urandom(3 * io.DEFAULT_BUFFER_SIZE + 17)


def _chunks(reader: HashingReader) -> bytes:
    parts = []
    while chunk := reader.read(1000):
        parts.append(chunk)
    return b"".join(parts)


def _readinto(reader: HashingReader) -> bytes:
    out = bytearray()
    buffer = bytearray(4096)
    while n := reader.readinto(buffer):
        out += buffer[:n]
    return bytes(out)


WAYS: dict[str, Callable[[HashingReader], bytes]] = {
    "read()": lambda r: r.read(),
    "read(-1)": lambda r: r.read(-1),
    "read(1000) until empty": _chunks,
    "readinto": _readinto,
    "io.BufferedReader": lambda r: io.BufferedReader(r).read(),
    "BufferedReader.read1": lambda r: b"".join(iter(io.BufferedReader(r, 512).read1, b"")),
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_every_way_of_reading_returns_the_bytes_and_digests_exactly_them(tmp_path: Path, way: str) -> None:
    path = tmp_path / "disk0.img"
    path.write_bytes(DATA)
    with open(path, "rb") as raw:
        reader = HashingReader(raw)
        assert WAYS[way](reader) == DATA
    assert reader.hash.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_tarfile_reads_an_archive_through_it_and_the_digest_is_the_archives(tmp_path: Path) -> None:
    """The archive check's use: a whole archive read by ``tarfile`` in stream mode through the reader,
    then drained; the digest equals ``sha256sum`` of the file (what ``FILE.sha256`` holds)."""
    member = tmp_path / "web.conf"
    member.write_bytes(DATA)
    archive = tmp_path / "web.backup.tar"
    with tarfile.open(archive, "w") as tar, open(member, "rb") as handle:
        reader = HashingReader(handle)
        tar.addfile(tar.gettarinfo(str(member), "web.conf"), reader)
    assert reader.hash.hexdigest() == hashlib.sha256(DATA).hexdigest(), "backup's per-file digest"
    with open(archive, "rb") as raw:
        hashing = HashingReader(raw)
        with tarfile.open(fileobj=io.BufferedReader(hashing), mode="r|") as tar:
            for info in tar:
                extracted = tar.extractfile(info)
                assert extracted is not None and extracted.read() == DATA
        while hashing.read(65536):
            pass
    assert hashing.hash.hexdigest() == hashlib.sha256(archive.read_bytes()).hexdigest()
