"""One append-only log of JSON lines with gap-free sequence numbers, shared by the event and audit logs.

Several processes write the same log (the CLI, every guest's supervisor, the daemon), so an append is:
take ``flock(2)`` on a sibling lock file, read the last sequence number from the tail of the file, write
the new line with one ``write(2)`` on a descriptor opened ``O_APPEND``, release the lock. The lock is held
for that read and that write only (no fsync: a log line is not a config file; a crash may cut the last
line, which readers skip and the next writer ends with a newline). As for the config locks
(docs/architecture.md, "the config locks") the lock is never taken on the log itself, because rotation
renames it.

Rotation keeps every sequence number a reader may still ask for: a segment holds exactly ``segment``
records (``seq`` k*segment+1 up to (k+1)*segment); before the first record of a new segment is written,
the full one is renamed to ``NAME.1`` (replacing the one before it). At least ``segment`` records (10,000
by default, issue 11's retention) and at most twice that are on disk at any time. A reader that holds the
old segment open keeps reading it after the rename (the inode lives on), then moves to the new file; a
reader that finds a number missing looks again before it reports a gap, which only happens when it asks
for records older than the retention.

Readers never write: no lock, no file created. Only ``os``, ``fcntl`` and ``json`` are imported, so the
commands that write a line (``start``, ``create``) stay cheap (benchmarks/README.md).
"""

from __future__ import annotations

import fcntl
import json
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

SEGMENT = 10_000  # records per segment: retention is between one and two segments
TAIL_BLOCK = 8192  # bytes read backwards at a time to find the last record
MAX_LINE = 64 * 1024  # a record longer than this is refused (one write stays one write)


class Journal:
    """The log at ``path`` (``PATH.1`` the previous segment, ``.NAME.lock`` the writers' lock)."""

    __slots__ = ("lock_path", "mode", "old_path", "path", "segment")

    def __init__(self, path: str, segment: int = SEGMENT, mode: int = 0o640) -> None:
        if segment < 1:
            raise ValueError(f"{path}: segment size {segment!r} must be at least 1")
        self.path = path
        self.old_path = path + ".1"
        head, tail = os.path.split(path)
        self.lock_path = os.path.join(head, f".{tail}.lock")
        self.segment = segment
        self.mode = mode

    # -- writing -----------------------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> int:
        """Write ``record`` with the next sequence number (its ``seq`` key, placed first) and return it.

        Raises OSError when the directory is missing or not writable: the caller decides whether a lost
        line matters (the audit seam reports it; a supervisor carries on).
        """
        lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, self.mode)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            last, torn = self._last()
            seq = last + 1
            if seq > 1 and (seq - 1) % self.segment == 0 and os.path.exists(self.path):
                os.replace(self.path, self.old_path)
                torn = False
            line = json.dumps({"seq": seq, **{k: v for k, v in record.items() if k != "seq"}},
                              separators=(",", ":"), sort_keys=False, default=str)
            data = (("\n" if torn else "") + line + "\n").encode()
            if len(data) > MAX_LINE:
                raise ValueError(f"{self.path}: a record of {len(data)} bytes is longer than {MAX_LINE}")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         self.mode)
            try:
                written = os.write(fd, data)
            finally:
                os.close(fd)
            if written != len(data):
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            return seq
        finally:
            os.close(lock)  # releases the flock

    def _last(self) -> tuple[int, bool]:
        """The last sequence number written (0 for none) and whether the current file ends mid-line."""
        for path in (self.path, self.old_path):
            found = last_record(path)
            if found is not None:
                seq, torn = found
                return seq, torn and path == self.path
        return 0, False

    # -- reading -----------------------------------------------------------------------------------------
    def cursor(self, since: int = 0) -> Cursor:
        """A reader positioned after ``since`` (0: from the oldest record retained)."""
        return Cursor(self, since)

    def read(self, since: int = 0) -> Iterator[dict[str, Any]]:
        """Every retained record with ``seq > since``, oldest first (what is there now; nothing waits)."""
        cursor = self.cursor(since)
        yield from cursor.poll()

    def last_seq(self) -> int:
        """The sequence number of the newest record (0 when the log is empty or absent)."""
        return self._last()[0]


def last_record(path: str) -> tuple[int, bool] | None:
    """The ``seq`` of the last whole record in ``path`` and whether the file ends mid-line; None if the file
    is missing or holds no whole record."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        end = os.fstat(fd).st_size
        torn = False
        if end:
            torn = os.pread(fd, 1, end - 1) != b"\n"
        data = b""
        position = end
        while position > 0:
            start = max(0, position - TAIL_BLOCK)
            data = os.pread(fd, position - start, start) + data
            position = start
            lines = data.split(b"\n")
            # lines[0] may be cut by the block boundary unless we reached the start of the file
            candidates = lines[1:] if position > 0 else lines
            if torn:
                candidates = candidates[:-1]
            for line in reversed(candidates):
                seq = _seq(line)
                if seq is not None:
                    return seq, torn
        return None
    finally:
        os.close(fd)


def _seq(line: bytes) -> int | None:
    if not line.startswith(b'{"seq":'):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    seq = value.get("seq") if isinstance(value, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


class Cursor:
    """Reads a journal from ``since + 1`` on, following rotation; ``poll()`` returns what is new.

    ``missed`` lists the ranges ``(first, last)`` of sequence numbers that were no longer retained when the
    cursor reached them (a reader that asked for records older than the retention): a gap is reported,
    never skipped silently.
    """

    def __init__(self, journal: Journal, since: int = 0) -> None:
        if since < 0:
            raise ValueError(f"{journal.path}: since={since!r} must be 0 or more")
        self.journal = journal
        self.next = since + 1
        self.missed: list[tuple[int, int]] = []
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._buffer = b""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._inode = None
        self._buffer = b""

    def __del__(self) -> None:
        self.close()

    def poll(self) -> list[dict[str, Any]]:
        """Every record from ``self.next`` to the newest one written so far."""
        out: list[dict[str, Any]] = []
        retried = False
        while True:
            if self._fd is None and not self._open():
                return out
            assert self._fd is not None
            chunk = os.read(self._fd, 1 << 16)
            if chunk:
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                for line in lines:
                    record = _record(line)
                    if record is None or record["seq"] < self.next:
                        continue
                    if record["seq"] > self.next:
                        if not retried:  # rotated under us between two opens: look again once
                            retried = True
                            self.close()
                            break
                        self.missed.append((self.next, record["seq"] - 1))
                        self.next = record["seq"]
                    retried = False
                    out.append(record)
                    self.next += 1
                continue
            # At the end of this file: if the log's current file is another one, this one was rotated away
            # and gets no more writes; it has been read to its end, so move to the current one.
            current = _inode_of(self.journal.path)
            if current is None or current == self._inode:
                return out
            self.close()
            self._open_path(self.journal.path)

    def _open(self) -> bool:
        """Open the segment that holds ``self.next`` (the oldest one retained if it is older still)."""
        current_first = _first_seq(self.journal.path)
        if current_first is not None and current_first <= self.next:
            return self._open_path(self.journal.path)
        if _first_seq(self.journal.old_path) is not None:
            return self._open_path(self.journal.old_path)
        if current_first is not None:
            return self._open_path(self.journal.path)
        return False

    def _open_path(self, path: str) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        info = os.fstat(fd)
        self._fd, self._inode, self._buffer = fd, (info.st_dev, info.st_ino), b""
        return True


def _inode_of(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _first_seq(path: str) -> int | None:
    try:
        with open(path, "rb") as file:
            line = file.readline(MAX_LINE)
    except FileNotFoundError:
        return None
    return _seq(line.rstrip(b"\n")) if line.endswith(b"\n") else None


def _record(line: bytes) -> dict[str, Any] | None:
    if not line.startswith(b'{"seq":'):
        return None  # an empty line or the rest of a line cut by a crash
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("seq"), int) or isinstance(value["seq"], bool):
        return None
    return value
