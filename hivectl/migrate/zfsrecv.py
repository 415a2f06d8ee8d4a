"""The target's control session of a ZFS migration: the lock, the clean-up on failure, the commit.

``hivectl _stream migrate-zfs NAME DATASTORE`` runs this on the target for the whole of a migration whose
disks travel as ``zfs send`` streams (docs/migration.md, "ZFS guests"). The streams themselves go through
replication's own receiving side (``_stream replica recv``, :mod:`hivectl.transfer.side`), one session per
stream, driven by :func:`hivectl.transfer.send.sync` on the sender; this session is what makes those
receives a migration rather than a replica:

- it holds the target's migration lock (``hivectl/migrate/lock.py``) from the first byte to the commit;
- it refuses a dataset ``<vm_dir dataset>/NAME`` that already exists (it never receives over anything it
  did not make), then writes ``vm_dir/.config/.migrate-NAME.incoming``: the mark that says the dataset
  about to appear is this migration's and may be destroyed when it fails;
- any end other than a commit (the stream ends because ssh was killed, SIGHUP/SIGTERM/SIGPIPE, the sender
  sends ``abort``, a malformed frame) destroys the received dataset (``zfs destroy -r``: a partial receive
  and its resume state go with it) and the mark, so no half guest stays; a session killed outright leaves
  the mark, and the next migration of the name collects its dataset (it holds the lock, so no live
  session owns it);
- ``commit``: the dataset is mounted, the run-time files the source's run left in it are removed (the
  file stream never sends them), ``OLD.conf`` becomes ``NEW.conf`` for ``--rename``, the migration's
  snapshots are destroyed, ``seed.iso`` is rebuilt from ``.cloud-init``, the mark goes, and the guest is
  started here if it ran on the source (destroyed again if it does not start).

zfs-fuse (the Linux tests' ZFS) cannot rename datasets, so the receive goes straight into the final name
rather than into a hidden name renamed at the commit; the mark and the destroy on failure are what keep
the target clean instead. The guest's dataset is visible there while it arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hivectl import validate
from hivectl.errors import Conflict, HivectlError, os_error_line
from hivectl.host.base import Host
from hivectl.journal.events import emit_quietly
from hivectl.migrate import wire
from hivectl.migrate.lock import migration_lock
from hivectl.model.layout import config_name, is_runtime_file
from hivectl.store import GuestRef, Store

SNAPSHOT_PREFIX = "hivectl-migrate-"  # the sender's snapshots (hivectl/migrate/zfssend.py)


def incoming_path(config_dir: Path, name: str) -> Path:
    return config_dir / f".migrate-{name}.incoming"


def target_dataset(store: Store, datastore: str, name: str) -> str:
    """Where a ZFS migration of ``name`` lands: replication's ``<vm_dir dataset>/NAME`` (transfer/side.py),
    so only the default datastore, and only on ZFS."""
    ds = store.datastore(datastore)
    if ds.dataset is None:
        raise HivectlError(f"datastore {datastore} ({ds.spec}) is not ZFS: a zfs send stream cannot land there")
    if ds != store.default:
        raise HivectlError(f"datastore {datastore} ({ds.spec}): zfs send streams land in the default datastore "
                           "only (the vm_dir dataset)")
    return f"{ds.dataset}/{name}"


def exists(host: Host, dataset: str) -> bool:
    return host.run(["zfs", "list", "-H", "-o", "name", dataset], check=False).status == 0


def destroy(host: Host, dataset: str) -> None:
    """``zfs destroy -r`` of a dataset this migration made, waiting (bounded) while a receive that is
    ending still holds it busy."""
    deadline = time.monotonic() + 60
    while exists(host, dataset):
        result = host.run(["zfs", "destroy", "-r", dataset], check=False)
        if result.status == 0 or not exists(host, dataset):
            return
        if time.monotonic() > deadline:
            raise HivectlError(f"the received dataset {dataset} could not be destroyed: {result.stderr.strip()}")
        time.sleep(0.5)


def receive(store: Store, host: Host, name: str, datastore: str, inp: IO[bytes], out: IO[bytes],
            start: Callable[[str], None] | None = None) -> int:
    """The control session of guest ``name``'s ZFS migration into ``datastore``; 0 once committed."""
    try:
        validate.guest_name(None, "NAME", name, new=True)
        with migration_lock(store.config_dir, name, "receive"):
            status = _session(store, host, name, datastore, inp, out, start)
        emit_quietly(str(store.config_dir), "migration", f"/guests/{name}", {"phase": "received", "zfs": True})
        return status
    except (HivectlError, OSError, KeyboardInterrupt) as error:
        why = str(error) if not isinstance(error, OSError) else os_error_line(error)
        emit_quietly(str(store.config_dir), "migration", f"/guests/{name}",
                     {"phase": "refused", "zfs": True, "error": why})
        with contextlib.suppress(OSError, ValueError):
            wire.write_answer(out, {"error": why})
        return 1


def _session(store: Store, host: Host, name: str, datastore: str, inp: IO[bytes], out: IO[bytes],
             start: Callable[[str], None] | None) -> int:
    dataset = target_dataset(store, datastore, name)
    mark = incoming_path(store.config_dir, name)
    if mark.exists():  # an earlier session killed outright: its dataset is that migration's, and unheld
        destroy(host, dataset)
        mark.unlink()
    store.require_free(name)
    if exists(host, dataset):
        raise Conflict(f"dataset {dataset} exists here and is not a guest: nothing was received "
                       "(destroy it, or migrate with --rename)")
    from hivectl.rcfile import atomic_write

    atomic_write(mark, json.dumps({"dataset": dataset, "since": int(time.time())}) + "\n")
    committed = False
    try:
        wire.write_answer(out, {"ok": True, "dataset": dataset})
        while True:
            frame = wire.read_frame(inp)
            if frame is None:
                raise wire.StreamError("the migration's control stream ended before the sender committed; "
                                       f"the received dataset {dataset} was destroyed")
            header, _payload = frame
            kind = header["t"]
            if kind == "reset":  # a full receive that failed left a dataset without a snapshot: start afresh
                destroy(host, dataset)
                wire.write_answer(out, {"ok": True})
            elif kind == "commit":
                ref = GuestRef(name, store.datastore(datastore))
                _publish(host, ref, dataset, header)
                mark.unlink(missing_ok=True)
                committed = True
                started = bool(header.get("start")) and start is not None
                if started:
                    assert start is not None
                    from hivectl.migrate.receive import _start_or_remove

                    _start_or_remove(store, host, name, start)
                wire.write_answer(out, {"ok": True, "path": str(ref.directory), "started": started})
                return 0
            elif kind == "abort":
                raise HivectlError(f"the sender gave up: {header.get('why', 'no reason given')}; "
                                   f"the received dataset {dataset} was destroyed")
            else:
                raise wire.StreamError(f"unknown frame type {kind!r}")
    except BaseException:
        if not committed:
            with contextlib.suppress(HivectlError, OSError):
                destroy(host, dataset)
            mark.unlink(missing_ok=True)
        raise


def _snapshots(header: dict[str, Any]) -> list[str]:
    from hivectl.storage.zfs import snapshot_name

    found = header.get("snapshots", [])
    if not isinstance(found, list) or not all(isinstance(s, str) for s in found):
        raise wire.StreamError("a commit frame's snapshots are not a list of names")
    names = [snapshot_name(s) for s in found]
    stray = [s for s in names if not s.startswith(SNAPSHOT_PREFIX)]
    if stray:
        raise wire.StreamError(f"a commit frame names snapshots that are not a migration's: {stray}")
    return names


def _publish(host: Host, ref: GuestRef, dataset: str, header: dict[str, Any]) -> None:
    """Make the received dataset the guest ``ref``: mounted, cleaned of the source's run, named, no
    migration snapshots left."""
    old = header.get("from")
    if not isinstance(old, str):
        raise wire.StreamError("a commit frame without the guest's name on the source ('from')")
    validate.guest_name(None, "from", old)
    snapshots = _snapshots(header)
    if not exists(host, dataset):
        raise HivectlError(f"the sender committed, but {dataset} was not received here")
    directory = ref.directory
    if not (directory / config_name(old)).is_file():
        host.run(["zfs", "mount", dataset], check=False)  # received unmounted (an OpenZFS -u, a remount)
    if not (directory / config_name(old)).is_file():
        raise HivectlError(f"the received dataset {dataset} has no {config_name(old)} at {directory}")
    for entry in sorted(os.listdir(directory)):
        if is_runtime_file(entry, old) and entry != config_name(old):
            path = directory / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    if old != ref.name:
        os.rename(directory / config_name(old), directory / config_name(ref.name))
    for snap in snapshots:
        host.run(["zfs", "destroy", "-r", f"{dataset}@{snap}"], check=False)
    from hivectl.storage.cloudinit import ensure_seed

    seed = ensure_seed(ref)
    if seed is not None:
        seed.apply(host)
