"""Compression formats handled in-process: xz, gzip, bzip2 (standard library) and zstd (optional).

vm-bhyve runs ``xz -d``, ``gunzip``, or worse the ``decompress`` command written in an image manifest
(a file that travels between hosts: a command-injection hole). hivectl never runs a program to
(de)compress: the format is recognised from the data's magic bytes (not from a name or a manifest) and
handled by Python's own modules. zstd needs the ``zstandard`` module; without it a zstd stream is a
clear error, never a silent fallback to a command.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import IO, Any, cast

from hivectl.errors import HivectlError

MAGIC = {"xz": b"\xfd7zXZ\x00", "gz": b"\x1f\x8b", "bz2": b"BZh", "zst": b"\x28\xb5\x2f\xfd"}
SUFFIXES = {".xz": "xz", ".gz": "gz", ".bz2": "bz2", ".zst": "zst"}
KINDS = ("xz", "gz", "bz2", "zst", "none")


def detect(head: bytes) -> str | None:
    """The compression of a stream from its first bytes, or None for uncompressed data."""
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def detect_file(path: Path) -> str | None:
    with open(path, "rb") as handle:
        return detect(handle.read(8))


def suffix_kind(name: str) -> str | None:
    """The compression a file name announces (``.xz`` → xz), used only to name the result."""
    for suffix, kind in SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    return None


def _zstandard() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        raise HivectlError("this stream is zstd-compressed and the Python module 'zstandard' is not installed "
                           "(pip install zstandard); hivectl never runs an external decompressor") from None


def available(kind: str) -> bool:
    if kind != "zst":
        return kind in KINDS
    try:
        importlib.import_module("zstandard")
    except ImportError:
        return False
    return True


def reader(kind: str | None, raw: IO[bytes]) -> IO[bytes]:
    """A readable stream of the decompressed data (multi-member/multi-stream files included)."""
    if kind is None or kind == "none":
        return raw
    if kind == "xz":
        import lzma

        return cast(IO[bytes], lzma.LZMAFile(raw, "rb"))
    if kind == "gz":
        import gzip

        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bz2":
        import bz2

        return cast(IO[bytes], bz2.BZ2File(raw, "rb"))
    if kind == "zst":
        return cast(IO[bytes], _zstandard().ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    raise HivectlError(f"unknown compression {kind!r}")


def writer(kind: str, raw: IO[bytes], level: int | None = None) -> IO[bytes]:
    """A writable stream that compresses into ``raw``; closing it finishes the stream (not ``raw``)."""
    if kind == "none":
        return raw
    if kind == "xz":
        import lzma

        return cast(IO[bytes], lzma.LZMAFile(raw, "wb", preset=6 if level is None else level))
    if kind == "gz":
        import gzip

        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6 if level is None else level,
                                             mtime=0))
    if kind == "bz2":
        import bz2

        return cast(IO[bytes], bz2.BZ2File(raw, "wb", compresslevel=9 if level is None else level))
    if kind == "zst":
        compressor = _zstandard().ZstdCompressor(level=3 if level is None else level)
        return cast(IO[bytes], compressor.stream_writer(raw, closefd=False))
    raise HivectlError(f"unknown compression {kind!r}; expected one of {', '.join(KINDS)}")
