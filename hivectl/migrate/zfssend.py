"""The sending end of a ZFS migration: snapshots sent with replication's resumable ``zfs send``/``recv``.

A guest whose datastore is ZFS on both hosts travels as its dataset (the config, the file disks, the UEFI
vars, everything in it) and the zvols below it, not as a file stream: each round takes a recursive snapshot
``hivectl-migrate-STAMP-N`` and brings the target up to it with :func:`hivectl.transfer.send.sync`, the
same code replication uses (a full stream first, then ``zfs send -i`` of what changed since the round
before; ``zfs recv -s`` and ``zfs send -t TOKEN`` where both ZFS keep interrupted receives). The streams go
through the target's ``hivectl _stream replica recv`` (:class:`hivectl.transfer.peer.StreamPeer` over the
migration's transport); the target's ``_stream migrate-zfs`` session (:mod:`hivectl.migrate.zfsrecv`)
holds its lock for the whole migration, destroys what arrived if the migration fails, and publishes the
guest at the commit.

A stream that breaks (ssh killed, a receive that fails) is tried again, ``ATTEMPTS`` times in all: where
the two ZFS resume, the next attempt sends only what had not arrived (``zfs send -t``); where they do not
(zfs-fuse 0.7), that round's stream is sent again from its start, after a failed full receive's remains are
destroyed there (``reset``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivectl.context import Context
from hivectl.errors import HivectlError
from hivectl.migrate import wire
from hivectl.migrate.send import Round
from hivectl.migrate.zfsrecv import SNAPSHOT_PREFIX
from hivectl.model import backing
from hivectl.store import GuestRef

ATTEMPTS = 3
Say = Callable[[str], None]


def disk_transports(ref: GuestRef, zfs: bool) -> list[str]:
    """One line per disk: how it travels (the preflight's account, issue 12)."""
    lines = []
    for disk in ref.config().disks:
        if disk.is_cd:
            continue
        kind = backing.of(disk.dev)
        where = f"{disk.key} ({disk.dev} {disk.name})"
        if zfs:
            member = f"{ref.dataset}/{disk.name}" if kind.zvol else f"{ref.dataset}"
            lines.append(f"{where}: zfs send of {member}")
        elif kind.zvol:
            lines.append(f"{where}: a zvol, which only a zfs send can carry")
        else:
            lines.append(f"{where}: file stream (sparse-aware)")
    return lines


@dataclass
class ZfsSender:
    """One ZFS migration's rounds, from guest ``ref`` here to guest ``new`` there."""

    ctx: Context
    transport: Any  # hivectl/migrate/transport.Transport: stream(words)
    ref: GuestRef
    new: str
    say: Say
    control: Any = None  # the target's migrate-zfs session (a Pipe)
    snapshots: list[str] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))

    @property
    def dataset(self) -> str:
        assert self.ref.dataset is not None
        return self.ref.dataset

    def send_round(self) -> Round:
        """Snapshot the guest (recursively) and bring the target up to that snapshot."""
        from hivectl.transfer.peer import StreamPeer
        from hivectl.transfer.send import sync

        started = time.monotonic()
        snap = f"{SNAPSHOT_PREFIX}{self.stamp}-{len(self.snapshots) + 1}"
        self.ctx.host.run(["zfs", "snapshot", "-r", f"{self.dataset}@{snap}"])
        self.snapshots.append(snap)
        peer = StreamPeer(self.transport, self.transport.name)
        result = Round()
        for attempt in range(1, ATTEMPTS + 1):
            moved = [0]

            def progress(total: int, moved: list[int] = moved) -> None:
                moved[0] = total

            try:
                synced = sync(self.ctx, peer, self.ref.name, upto=snap, progress=progress, target=self.new)
            except (HivectlError, OSError) as error:
                from hivectl.transfer.chain import Diverged

                result.payload += moved[0]
                if isinstance(error, Diverged) or attempt == ATTEMPTS:
                    raise
                self.retries.append({"snapshot": snap, "attempt": attempt, "bytes": moved[0], "error": str(error)})
                self.say(f"the zfs stream of {snap} to {self.transport.name} broke after {moved[0]} bytes "
                         f"({error}); attempt {attempt + 1} of {ATTEMPTS}")
                self._reset_if_empty(peer)
                continue
            result.payload += synced.bytes
            result.files = len(synced.sent)
            break
        result.seconds = time.monotonic() - started
        return result

    def _reset_if_empty(self, peer: Any) -> None:
        """A full receive that failed without a resume token can leave the new dataset with no snapshot,
        which the next full stream would not be received over: destroy it there (it is this migration's)."""
        there = peer.state(self.new)
        top = there["members"].get("") if there.get("exists") else None
        if top is not None and not top["snapshots"] and not top["token"]:
            wire.write_frame(self.control.stdin, {"t": "reset"})
            self.control.stdin.flush()
            wire.read_answer(self.control.stdout)

    def commit(self, start: bool) -> dict[str, Any]:
        """The target publishes the guest (and starts it if ``start``); the migration's snapshots go there."""
        wire.write_frame(self.control.stdin, {"t": "commit", "start": start, "from": self.ref.name,
                                              "snapshots": self.snapshots})
        self.control.stdin.flush()
        return wire.read_answer(self.control.stdout)

    def remove_snapshots(self) -> list[str]:
        """The migration's snapshots here (after success with --keep-source, or after a failure);
        what could not be destroyed, one line each."""
        notes = []
        for snap in self.snapshots:
            result = self.ctx.host.run(["zfs", "destroy", "-r", f"{self.dataset}@{snap}"], check=False)
            if result.status != 0:
                notes.append(f"{self.dataset}@{snap} could not be destroyed here: {result.stderr.strip()}")
        return notes
