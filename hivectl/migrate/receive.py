"""The receiving end: frames into a hidden staging directory, published as the guest only on ``commit``.

``hivectl _stream migrate-recv NAME DATASTORE`` runs this on the target with the sender's frames on its
standard input (``hivectl/migrate/wire.py``). The guest is built in ``.hivectl-staging-NAME-RAND`` (a
dataset on a ZFS datastore) exactly as ``create`` and ``restore`` build theirs (``hivectl/staging.py``),
under the target's migration lock, and appears under its name by one rename when the sender commits. Any
other end (the stream ends early because ssh was killed, a frame is malformed, a write fails, the sender
gives up) removes the staging directory before exiting, so an interrupted migration leaves no half guest
on the target; a receiver killed outright leaves a staging entry that nobody holds, which the next command
on that datastore collects (``Store.leftovers``).

Every path in a frame is checked before it is used: relative, no ``..``, no run-time file names, opened
with ``O_NOFOLLOW`` below a directory tree this receiver made itself (it never makes a symbolic link).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from hivectl import validate
from hivectl.errors import HivectlError, os_error_line
from hivectl.host.base import Host
from hivectl.journal.events import emit_quietly
from hivectl.migrate import wire
from hivectl.migrate.lock import migration_lock
from hivectl.model.layout import config_name, is_runtime_file
from hivectl.model.staging import staging_name
from hivectl.staging import Collect, MakeStaging, Publish
from hivectl.store import GuestRef, Store

_ZEROS = bytes(1 << 20)


def _start_or_remove(store: Store, host: Host, name: str, start: Callable[[str], None]) -> None:
    """Start the published guest; if it will not start, destroy it again (no half guest here) and raise."""
    try:
        start(name)
    except HivectlError as error:
        from hivectl.ops.guests import plan_destroy

        try:
            plan_destroy(store, name).apply(host)
        except HivectlError as second:
            raise HivectlError(f"{name} was received but did not start here ({error}), and could not be "
                               f"removed again: {second}") from error
        raise HivectlError(f"{name} was received but did not start here, so it was removed again: {error}") \
            from error


def _relative(name: str, value: Any) -> str:
    """A frame's path, refused unless it is a plain relative path inside the guest directory."""
    if not isinstance(value, str) or not value or "\0" in value or "\\" in value:
        raise wire.StreamError(f"a frame names the path {value!r}: not a relative path")
    parts = PurePosixPath(value).parts
    if value.startswith("/") or any(p in ("..", ".", "") for p in parts) or len(value) > 1024:
        raise wire.StreamError(f"a frame names the path {value!r}: not a relative path inside the guest")
    if is_runtime_file(parts[0], name):
        raise wire.StreamError(f"a frame names the path {value!r}: a run-time file, which is never migrated")
    return value


def _number(header: dict[str, Any], key: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 1 << 50:
        raise wire.StreamError(f"a {header.get('t')} frame has {key}={value!r}: not a size")
    return value


class _Files:
    """The open files of the staging directory, by relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fds: dict[str, int] = {}
        self.sizes: dict[str, int] = {}

    def open(self, rel: str, size: int, mode: int) -> None:
        fd = self.fds.get(rel)
        if fd is None:
            fd = os.open(self.root / rel, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            self.fds[rel] = fd
        os.ftruncate(fd, size)
        os.fchmod(fd, mode & 0o7777)
        self.sizes[rel] = size

    def fd(self, rel: str) -> int:
        if rel not in self.fds:
            raise wire.StreamError(f"data for {rel!r} before its file frame")
        return self.fds[rel]

    def write(self, rel: str, offset: int, data: bytes) -> None:
        fd = self.fd(rel)
        if offset + len(data) > self.sizes[rel]:
            raise wire.StreamError(f"data for {rel!r} at {offset} goes past its size {self.sizes[rel]}")
        view = memoryview(data)
        while view:
            done = os.pwrite(fd, view, offset)
            view, offset = view[done:], offset + done

    def zero(self, rel: str, offset: int, length: int) -> None:
        while length > 0:
            piece = min(length, len(_ZEROS))
            self.write(rel, offset, _ZEROS[:piece])
            offset, length = offset + piece, length - piece

    def remove(self, rel: str) -> None:
        fd = self.fds.pop(rel, None)
        if fd is not None:
            os.close(fd)
        path = self.root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def sync(self) -> None:
        for fd in self.fds.values():
            os.fsync(fd)

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def receive(store: Store, host: Host, name: str, datastore: str, inp: IO[bytes], out: IO[bytes],
            start: Callable[[str], None] | None = None) -> int:
    """Receive guest ``name`` into ``datastore``; 0 once published, 1 (and nothing left) otherwise.

    ``start`` starts a guest here: a commit that asks for it (the guest ran on the source) starts the guest
    from this already running receiver, which saves the downtime a second ssh session and interpreter
    would cost; a guest that does not start is destroyed again before the error is answered."""
    try:
        validate.guest_name(None, "NAME", name, new=True)
        with migration_lock(store.config_dir, name, "receive"):
            status = _receive(store, host, name, datastore, inp, out, start)
        emit_quietly(str(store.config_dir), "migration", f"/guests/{name}", {"phase": "received"})
        return status
    except (HivectlError, OSError, KeyboardInterrupt) as error:
        why = str(error) if not isinstance(error, OSError) else os_error_line(error)
        emit_quietly(str(store.config_dir), "migration", f"/guests/{name}", {"phase": "refused", "error": why})
        with contextlib.suppress(OSError, ValueError):
            wire.write_answer(out, {"error": why})
        return 1


def _receive(store: Store, host: Host, name: str, datastore: str, inp: IO[bytes], out: IO[bytes],
             start: Callable[[str], None] | None) -> int:
    target_ds = store.datastore(datastore)
    if not target_ds.holds_guests:
        raise HivectlError(f"datastore {datastore} ({target_ds.spec}) does not hold guests")
    store.require_free(name)
    for leftover in store.leftovers(name, target_ds):  # what an earlier receiver, killed outright, left
        Collect(leftover.path, leftover.dataset).apply(host)
    final = GuestRef(name, target_ds)
    staged = final.staged(staging_name(name))
    staging = MakeStaging(staged.directory, staged.dataset,
                          ["zfs", "create", staged.dataset] if staged.dataset else [])
    staging.apply(host)
    files = _Files(staged.directory)
    received = 0
    try:
        wire.write_answer(out, {"ok": True, "staging": str(staged.directory)})
        while True:
            frame = wire.read_frame(inp)
            if frame is None:
                raise wire.StreamError("the migration stream ended before the sender committed; "
                                       "nothing was kept")
            header, payload = frame
            kind = header["t"]
            if kind == "dir":
                path = staged.directory / _relative(name, header.get("path"))
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path, 0o700)
                os.chmod(path, _number(header, "mode") & 0o7777, follow_symlinks=False)
            elif kind == "file":
                files.open(_relative(name, header.get("path")), _number(header, "size"), _number(header, "mode"))
            elif kind == "data":
                files.write(_relative(name, header.get("path")), _number(header, "off"), payload)
                received += len(payload)
            elif kind == "zero":
                files.zero(_relative(name, header.get("path")), _number(header, "off"), _number(header, "len"))
            elif kind == "remove":
                files.remove(_relative(name, header.get("path")))
            elif kind == "sync":
                files.sync()
                wire.write_answer(out, {"ok": True, "received": received})
            elif kind == "commit":
                files.sync()
                files.close()
                if not (staged.directory / config_name(name)).is_file():
                    raise HivectlError(f"the sender committed without {config_name(name)}; nothing was kept")
                from hivectl.storage.cloudinit import ensure_seed

                seed = ensure_seed(staged)  # seed.iso is a run-time file: rebuilt here from .cloud-init
                if seed is not None:
                    seed.apply(host)
                store.require_free(name)
                Publish(staging, staged.directory, final.directory, staged.dataset, final.dataset).apply(host)
                started = bool(header.get("start")) and start is not None
                if started:
                    assert start is not None
                    _start_or_remove(store, host, name, start)
                wire.write_answer(out, {"ok": True, "path": str(final.directory), "received": received,
                                        "started": started})
                return 0
            elif kind == "abort":
                raise HivectlError(f"the sender gave up: {header.get('why', 'no reason given')}; nothing was kept")
            else:
                raise wire.StreamError(f"unknown frame type {kind!r}")
    except BaseException:
        files.close()
        staging.undo(host)
        raise
