"""``image create|list|provision|destroy``: guests as ZFS send streams in ``vm_dir/images`` (vm-bhyve's ``lib/vm-zfs``).

An image is ``images/UUID.zfs`` (or ``UUID.zfs.xz``/``.gz``/``.zst``, compressed in-process) plus
``images/UUID.manifest`` in vm-bhyve's sysrc format (``description``, ``created``, ``name``, ``filename``),
so images move between vm-bhyve and hivectl hosts. Unlike vm-bhyve, hivectl never runs a command named
in a manifest or in ``system.conf`` (``decompress``/``compress``): images are copied between hosts, and a
crafted manifest would run as root. The stream's compression is recognised from its magic bytes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError, NotFound, UsageError
from hivectl.host import streams as pipes
from hivectl.model.identity import new_uuid
from hivectl.model.staging import staging_name
from hivectl.plan import Call, Plan, Run, WriteFile
from hivectl.rcfile import RcFile
from hivectl.staging import Collect, MakeStaging, Publish
from hivectl.storage import compression, zfs
from hivectl.storage.clone import generalise_action
from hivectl.store import GuestRef, Store

SUFFIX = {"xz": ".zfs.xz", "gz": ".zfs.gz", "zst": ".zfs.zst", "none": ".zfs"}
COPY = 1 << 20


@dataclass(frozen=True)
class Image:
    uuid: str
    name: str
    created: str
    description: str
    filename: str


def _images_place(store: Store) -> tuple[str, Path]:
    dataset = store.settings.zfs_dataset
    if dataset is None:
        raise HivectlError("images need the default datastore (vm_dir) on ZFS (vm_dir=\"zfs:pool/dataset\")")
    return f"{dataset}/images", store.root / "images"


def list_images(store: Store) -> list[Image]:
    _, directory = _images_place(store)
    images = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    for name in names:
        if name.endswith(".manifest"):
            rc = RcFile.load(directory / name)
            images.append(Image(name[: -len(".manifest")], rc.get("name"), rc.get("created"), rc.get("description"),
                                rc.get("filename")))
    return images


def _manifest(store: Store, uuid: str) -> tuple[Path, RcFile, Path]:
    validate.uuid(None, "UUID", uuid)
    _, directory = _images_place(store)
    path = directory / f"{uuid}.manifest"
    if not path.is_file():
        raise NotFound(f"image {uuid} does not exist (see 'hivectl image list')")
    rc = RcFile.load(path)
    stream = validate.file_name(path, "filename", rc.get("filename"))
    if not stream.startswith(uuid + "."):
        raise ConfigError(path, "filename", stream, f"an image's stream file must be named {uuid}.zfs[.EXT]")
    return path, rc, directory / stream


def plan_create(store: Store, name: str, description: str = "", compress: str = "xz") -> tuple[Plan, str]:
    validate.choice(None, "--compress", compress, tuple(SUFFIX))
    if compress == "zst" and not compression.available("zst"):
        raise HivectlError("--compress zst needs the Python module zstandard (pip install zstandard)")
    if any(c in description for c in '"#\n'):
        raise ConfigError(None, "-d", description, "a description cannot contain '\"', '#' or a newline")
    ref = store.get(name)
    if ref.dataset is None:
        raise HivectlError(f"images need a ZFS guest; {name} is in {ref.datastore.name} ({ref.datastore.spec})")
    images_ds, directory = _images_place(store)
    uuid = new_uuid()
    snap = f"{ref.dataset}@{uuid.split('-')[0]}"
    target = directory / f"{uuid}{SUFFIX[compress]}"
    plan = Plan()
    if not directory.is_dir():
        plan.add(Run(["zfs", "create", images_ds], undo_argv=["zfs", "destroy", images_ds]))
    plan.add(Run(["zfs", "snapshot", "-r", snap], undo_argv=["zfs", "destroy", "-r", snap]))
    send = _send_argv(store, ref.dataset, snap)
    plan.add(Call(send, lambda: _write_stream(send, target, compress), lambda: target.unlink(missing_ok=True)))
    manifest = RcFile(directory / f"{uuid}.manifest")
    for key, value in (("description", description or f"image of {name}"),
                       ("created", datetime.now().strftime("%Y-%m-%dT%H:%M:%S")), ("name", name),
                       ("filename", target.name)):
        manifest.set(key, value)
    plan.add(WriteFile(manifest.path, manifest.text(), ["sysrc", "-f", str(manifest.path), f"filename={target.name}"],
                       0o600))
    plan.add(Run(["zfs", "destroy", "-r", snap]))
    return plan, uuid


def _send_argv(store: Store, dataset: str, snap: str) -> list[str]:
    """The one ``zfs send`` whose stream ``zfs recv`` can apply on any pool, as vm-bhyve's single ``UUID.zfs``.

    ``zfs send -R`` carries the guest's dataset with its disks (child zvols) and properties, but it keeps a
    clone a clone (zfs(8), *send -R*): the stream of a guest made by ``hivectl clone`` would only receive
    where the clone's origin exists, and would come back as a clone of it on the same pool, so the
    original's snapshot could no longer be destroyed. A clone without child datasets is sent as one full
    stream (``-p`` keeps its properties), which needs nothing. A clone with children cannot be one
    self-contained stream (vm-bhyve's image format is a single stream applied by one ``zfs recv``): refused,
    naming the way to an independent copy.
    """
    origins = zfs.origins(store.host, dataset)
    outside = {m: o for m, o in origins.items() if o and o.split("@")[0] not in origins}
    if not outside:
        return ["zfs", "send", "-R", snap]
    if len(origins) == 1:
        return ["zfs", "send", "-p", snap]
    member, origin = next(iter(outside.items()))
    raise HivectlError(f"{dataset}: {member} is a ZFS clone of {origin}, and an image of a clone with disk "
                       "datasets would need that origin wherever it is provisioned; make an independent copy "
                       "first ('hivectl backup' then 'hivectl restore' under a new name), and image that")


def _write_stream(argv: list[str], target: Path, compress: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, pipes.reading(argv) as source:
            packed = compression.writer(compress, raw)
            while data := source.read(COPY):
                packed.write(data)
            if compress != "none":
                packed.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # still there only when something failed


def plan_provision(store: Store, uuid: str, new: str, datastore: str = "default") -> Plan:
    """A new guest NEW from an image: ``zfs recv``, config renamed, identity generalised, out of sight.

    As ``create`` and ``restore`` (docs/reliability.md): the stream is received under a hidden, locked
    staging dataset of the datastore (``zfs recv`` makes the dataset it receives, so the guest is
    ``STAGING/NEW`` and the staging dataset holds only it and the lock), generalised there, and published
    by one ``zfs rename``; a killed provision leaves only a staging entry that the next command of that
    name collects, never a half-made guest under NEW.
    """
    validate.guest_name(None, "NEW", new, new=True)
    _, rc, stream = _manifest(store, uuid)
    if not stream.is_file():
        raise NotFound(f"{stream} is missing")
    store.require_free(new)
    target_store = store.datastore(datastore)
    if target_store.dataset is None:
        raise UsageError(f"datastore {target_store.name} is not on ZFS; images are provisioned into ZFS datastores")
    final = GuestRef(new, target_store)
    assert final.dataset is not None
    entry = staging_name(new)
    holder = MakeStaging(target_store.path / entry, f"{target_store.dataset}/{entry}",
                         ["zfs", "create", f"{target_store.dataset}/{entry}"])
    staged = GuestRef(new, target_store, f"{entry}/{new}")
    assert staged.dataset is not None
    dataset = staged.dataset
    old = validate.guest_name(rc.path, "name", rc.get("name"))
    snap = uuid.split("-")[0]
    plan = Plan()
    for leftover in store.leftovers(new, target_store):
        plan.add(Collect(leftover.path, leftover.dataset))
    plan.add(holder)
    plan.add(Call(["zfs", "recv", dataset], lambda: _receive(stream, dataset)))  # undone with the holder
    plan.add(Run(["zfs", "destroy", "-r", f"{dataset}@{snap}"]))
    plan.add(Call(["rm", "-f", str(staged.layout.run_lock)], lambda: staged.layout.run_lock.unlink(missing_ok=True)))
    plan.add(generalise_action(store, old, staged))
    plan.add(Publish(None, staged.directory, final.directory, staged.dataset, final.dataset))
    plan.add(Call(["zfs", "destroy", "-r", holder.dataset or ""], lambda: holder.undo(store.host)))
    return plan


def _receive(stream: Path, dataset: str) -> None:
    with open(stream, "rb") as raw:
        kind = compression.detect(raw.read(8))
        raw.seek(0)
        with compression.reader(kind, raw) as source, pipes.writing(["zfs", "recv", dataset]) as sink:
            while data := source.read(COPY):
                sink.write(data)


def plan_destroy(store: Store, uuid: str) -> Plan:
    path, _, stream = _manifest(store, uuid)

    def remove() -> None:
        stream.unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    return Plan([Call(["rm", "-f", str(stream), str(path)], remove)])
