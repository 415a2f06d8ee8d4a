"""The sending end: a guest directory as frames, first whole and then in rounds of what changed.

Every file of the guest directory that belongs to the guest rather than to one run of it
(``model/layout.is_runtime_file``) is sent: the config (as ``NEW.conf`` when renaming), the disk images,
the UEFI variable store, the TPM state directory, the cloud-init data (``.cloud-init/``; the receiver
rebuilds ``seed.iso`` from it, as ``restore`` does). Disk images are read through
``storage/sparse.read_blocks``: holes are skipped without reading and all-zero blocks are not sent, so an
empty 1 GiB disk costs nothing. The sender keeps a digest of every 64 KiB block it has sent; the next round
re-reads the data and sends only the blocks whose digest changed (and zeroes the blocks that became
holes or zeros). That is what makes a warm migration possible on a plain directory datastore, where there
are no ZFS snapshots to send increments of: the rounds run while the guest writes, and the last one, after
the guest stopped, is only the blocks written since the round before.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hivectl.migrate import wire
from hivectl.model.layout import config_name, is_runtime_file
from hivectl.storage import sparse

BLOCK = sparse.ZERO_BLOCK
PIECE = sparse.CHUNK


@dataclass
class Round:
    """What one round sent and how long it took (the far end's sync included)."""

    payload: int = 0  # data bytes sent
    files: int = 0
    scanned: int = 0  # data bytes read on this side
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {"bytes": self.payload, "files": self.files, "scanned": self.scanned,
                "seconds": round(self.seconds, 3)}


def tree_problems(directory: Path, guest: str) -> list[str]:
    """What of the guest directory cannot be sent (symlinks, sockets, devices), one line each."""
    problems = []
    for root, dirs, files in os.walk(directory):
        for entry in sorted(dirs + files):
            path = Path(root) / entry
            if Path(root) == directory and is_runtime_file(entry, guest):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{path} is a symbolic link: migration sends regular files and directories only")
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and not stat.S_ISSOCK(mode):
                problems.append(f"{path} is not a regular file or directory: it cannot be sent")
    return problems


@dataclass
class TreeSender:
    """Sends ``directory`` (guest ``name``) as guest ``new``; remembers what the far end holds."""

    directory: Path
    name: str
    new: str
    _sent: dict[str, dict[int, bytes]] = field(default_factory=dict)  # path -> block index -> digest

    def _entries(self) -> list[tuple[str, Path, os.stat_result]]:
        found: list[tuple[str, Path, os.stat_result]] = []
        for root, dirs, files in os.walk(self.directory):
            base = Path(root)
            dirs.sort()
            if base == self.directory:
                dirs[:] = [d for d in dirs if not is_runtime_file(d, self.name)]
            for entry in sorted(dirs) + sorted(files):
                path = base / entry
                if base == self.directory and is_runtime_file(entry, self.name):
                    continue
                info = os.lstat(path)
                if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                    continue  # sockets of a run; symlinks and devices are refused by the preflight
                rel = path.relative_to(self.directory).as_posix()
                if rel == config_name(self.name):
                    rel = config_name(self.new)
                found.append((rel, path, info))
        found.sort(key=lambda item: (item[0].count("/"), not stat.S_ISDIR(item[2].st_mode), item[0]))
        return found

    def send_round(self, out: IO[bytes], answers: IO[bytes]) -> Round:
        """One round: every file's changed blocks, then a sync the far end acknowledges once durable."""
        started = time.monotonic()
        result = Round()
        present = set()
        for rel, path, info in self._entries():
            present.add(rel)
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                wire.write_frame(out, {"t": "dir", "path": rel, "mode": mode})
                continue
            result.files += 1
            self._send_file(out, rel, path, mode, result)
        for rel in sorted(set(self._sent) - present):
            wire.write_frame(out, {"t": "remove", "path": rel})
            del self._sent[rel]
        wire.write_frame(out, {"t": "sync"})
        out.flush()
        wire.read_answer(answers)
        result.seconds = time.monotonic() - started
        return result

    def _send_file(self, out: IO[bytes], rel: str, path: Path, mode: int, result: Round) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
            wire.write_frame(out, {"t": "file", "path": rel, "size": size, "mode": mode})
            known = self._sent.setdefault(rel, {})
            seen: set[int] = set()
            run_start: int | None = None
            run = bytearray()

            def flush() -> None:
                nonlocal run_start, run
                if run_start is not None and run:
                    wire.write_frame(out, {"t": "data", "path": rel, "off": run_start}, bytes(run))
                    result.payload += len(run)
                run_start, run = None, bytearray()

            for offset, data in sparse.read_blocks(fd, size):
                result.scanned += len(data)
                for i in range(0, len(data), BLOCK):
                    block = data[i:i + BLOCK]
                    index = (offset + i) // BLOCK
                    seen.add(index)
                    digest = hashlib.blake2b(block, digest_size=16).digest()
                    if known.get(index) == digest:
                        flush()
                        continue
                    known[index] = digest
                    if run_start is None or run_start + len(run) != offset + i or len(run) >= PIECE:
                        flush()
                        run_start = offset + i
                    run += block
            flush()
            for index in sorted(set(known) - seen):  # held data there before, holds none now
                del known[index]
                start = index * BLOCK
                if start < size:  # beyond a shrunk file's end the "file" frame has cut it already
                    wire.write_frame(out, {"t": "zero", "path": rel, "off": start, "len": min(BLOCK, size - start)})
        finally:
            os.close(fd)
