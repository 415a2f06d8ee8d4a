"""Sparse files: find the data with ``SEEK_DATA``/``SEEK_HOLE`` and copy only that.

A fresh 20 GiB disk image holds no data at all; reading it byte by byte would take minutes and writing
it back would allocate 20 GiB. Every copy in hivectl (cloud images onto disks, backups, restores, clones on
directory datastores) goes through ``data_extents`` so that holes are skipped on both sides, and blocks
that are allocated but all zero are not written either (a restored disk is at least as sparse as the
original).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator

CHUNK = 1 << 20
ZERO_BLOCK = 64 << 10  # granularity of zero detection; also the alignment of restore writes
_ZEROS = bytes(ZERO_BLOCK)


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of every region that may hold data, in order; holes are left out.

    Falls back to one extent covering the whole file where the file system cannot tell (it then reads as
    data, which is slower but still correct).
    """
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no data after offset
                return
            if error.errno in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                yield offset, size - offset
                return
            raise
        if start >= size:
            return
        try:
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError:
            end = size
        end = min(end, size)
        yield start, end - start
        offset = end


def is_zero(block: bytes | memoryview) -> bool:
    return block == _ZEROS[: len(block)] if len(block) <= ZERO_BLOCK else not any(block)


def read_blocks(fd: int, size: int, on_read: Callable[[int], None] | None = None) -> Iterator[tuple[int, bytes]]:
    """Non-zero data of a file as ``(offset, bytes)`` pieces on a ``ZERO_BLOCK`` grid.

    Holes are skipped without reading, all-zero blocks inside data are dropped, and neighbouring non-zero
    blocks are merged into pieces of at most ``CHUNK`` bytes. The grid makes the result depend only on the
    file's content, not on how the file system happened to allocate it.
    """
    cursor = 0
    for start, length in data_extents(fd, size):
        offset = max(start - start % ZERO_BLOCK, cursor)
        end = min(-(-(start + length) // ZERO_BLOCK) * ZERO_BLOCK, size)
        while offset < end:
            data = os.pread(fd, min(CHUNK, end - offset), offset)
            if not data:
                break
            if on_read is not None:
                on_read(len(data))
            piece_start = None
            for i in range(0, len(data), ZERO_BLOCK):
                if is_zero(data[i:i + ZERO_BLOCK]):
                    if piece_start is not None:
                        yield offset + piece_start, data[piece_start:i]
                        piece_start = None
                elif piece_start is None:
                    piece_start = i
            if piece_start is not None:
                yield offset + piece_start, data[piece_start:]
            offset += len(data)
        cursor = max(cursor, offset)


class ContentDigest:
    """SHA-256 of a disk's *content* that never needs its holes: hivectl's disk checksum.

    Defined as SHA-256 over ``offset (8 bytes, big-endian) + block`` for every ``ZERO_BLOCK`` block on the
    grid that is not all zero, in order, then the size (8 bytes). Two files with the same bytes have the
    same digest however they are allocated, and computing it touches only the data (a 20 GiB empty disk
    costs nothing). Data may be fed in any pieces, in increasing offset order.
    """

    def __init__(self, size: int) -> None:
        import hashlib

        self.size = size
        self._hash = hashlib.sha256()
        self._index: int | None = None
        self._block = bytearray(ZERO_BLOCK)

    def feed(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            index, within = divmod(offset, ZERO_BLOCK)
            if index != self._index:
                self._flush()
                self._index = index
                self._block = bytearray(ZERO_BLOCK)
            take = min(len(view), ZERO_BLOCK - within)
            self._block[within:within + take] = view[:take]
            view = view[take:]
            offset += take

    def _flush(self) -> None:
        if self._index is None:
            return
        start = self._index * ZERO_BLOCK
        block = bytes(self._block[: max(0, min(ZERO_BLOCK, self.size - start))])
        if block and not is_zero(block):
            self._hash.update(start.to_bytes(8, "big"))
            self._hash.update(block)
        self._index = None

    def hexdigest(self) -> str:
        self._flush()
        final = self._hash.copy()
        final.update(self.size.to_bytes(8, "big"))
        return final.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """``ContentDigest`` of a file (reads only its data regions)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        digest = ContentDigest(size)
        for offset, data in read_blocks(fd, size):
            digest.feed(offset, data)
        return digest.hexdigest()
    finally:
        os.close(fd)


def copy_sparse(src_fd: int, dst_fd: int, size: int, on_read: Callable[[int], None] | None = None) -> int:
    """Copy the non-zero data of ``src`` into ``dst`` at the same offsets; returns bytes written.

    ``dst`` must already read as zeros where nothing is written (a fresh sparse file or a new zvol);
    its size is not changed.
    """
    written = 0
    for offset, data in read_blocks(src_fd, size, on_read):
        view = memoryview(data)
        while view:
            done = os.pwrite(dst_fd, view, offset)
            view = view[done:]
            offset += done
            written += done
    return written
