"""Where each ``diskN`` lives on the host and which bhyve block emulation it gets.

Paths follow vm-bhyve's ``lib/vm-run``: ``file`` disks are in the guest directory, ``zvol`` and
``sparse-zvol`` are ``/dev/zvol/<datastore dataset>/NAME/<name>``, ``custom`` is a literal path, and a
virtio-9p share is written ``sharename=/host/dir`` with ``diskN_dev=9p``. Everything that bhyve would only
reject at start (exit 4 with a generic message) is refused here with the key that causes it; the path itself
is composed by ``GuestLayout.disk_path`` (hivectl/model/layout.py).
"""

from __future__ import annotations

import re

from hivectl.drivers.bhyve.model import Opt, check_text, parse_opts
from hivectl.errors import ConfigError
from hivectl.model.guest import Disk, GuestConfig
from hivectl.safety import disks as shared
from hivectl.safety import values
from hivectl.store import GuestRef

AHCI_TYPES = ("ahci-hd", "ahci-cd")
_SHARE = re.compile(r"([A-Za-z0-9_.-]+)=(/.*)")


def disk_path(ref: GuestRef, config: GuestConfig, disk: Disk) -> str:
    """The host path (FreeBSD spelling) of a disk's data, or ``share=/dir`` for a 9p share."""
    source = config.path
    name_key, dev_key = f"{disk.key}_name", f"{disk.key}_dev"
    if (disk.type == "virtio-9p") != (disk.dev == "9p"):
        raise ConfigError(source, dev_key, disk.dev, f"{disk.key}_type=virtio-9p and {disk.key}_dev=9p go "
                                                     f"together (this disk has type {disk.type!r})")
    if disk.dev in ("zvol", "sparse-zvol", "file"):
        shared.check_name(source, name_key, disk.dev, disk.name)  # the one disk rule (hivectl/safety/disks.py)
    if disk.dev in ("zvol", "sparse-zvol"):
        if ref.dataset is None:
            raise ConfigError(source, dev_key, disk.dev, f"zvols need a ZFS datastore; {ref.datastore.name} "
                                                         f"({ref.datastore.spec}) is a plain directory")
        return check_text(source, name_key, ref.layout.disk_path(disk.dev, disk.name))
    if disk.dev == "custom":
        if not disk.name.startswith("/"):
            raise ConfigError(source, name_key, disk.name, "a custom disk is a full path starting with '/'")
        return check_text(source, name_key, disk.name)
    if disk.dev == "9p":
        match = _SHARE.fullmatch(disk.name)
        if not match:
            raise ConfigError(source, name_key, disk.name, "a 9p share is written sharename=/host/directory")
        return check_text(source, name_key, disk.name)
    if disk.dev == "iscsi":
        raise ConfigError(source, dev_key, disk.dev, "iSCSI disks are not supported by hivectl's bhyve driver; "
                                                     "use diskN_dev=custom with the /dev/daN path")
    shared.file_disk(ref.directory, source, name_key, disk.name)
    return check_text(source, name_key, ref.layout.disk_path(disk.dev, disk.name))


def share_parts(path: str) -> tuple[str, str]:
    """``share=/dir`` → ``("share", "/dir")`` (validated by ``disk_path``)."""
    name, _, directory = path.partition("=")
    return name, directory


def disk_opts(config: GuestConfig, disk: Disk) -> tuple[Opt, ...]:
    """``diskN_opts`` as options; inside a shared AHCI controller ``hd:``/``cd:`` would start a new port."""
    key = f"{disk.key}_opts"
    values.disk_options(config.path, key, disk.opts, disk.type)  # only options bhyve defines for this device
    opts = parse_opts(config.path, key, disk.opts)
    if disk.type == "virtio-scsi" and any(o.name in ("ro", "nocache", "direct", "sectorsize") for o in opts):
        bad = next(o.name for o in opts if o.name in ("ro", "nocache", "direct", "sectorsize"))
        raise ConfigError(config.path, key, disk.opts, f"virtio-scsi passes a CTL port through and has no "
                                                       f"{bad!r} option")
    return opts


def check_scsi(config: GuestConfig, disk: Disk, path: str) -> None:
    """virtio-scsi hands a CAM target layer port to the guest; a file path cannot work."""
    if disk.type == "virtio-scsi" and not path.startswith("/dev/cam/ctl"):
        raise ConfigError(config.path, f"{disk.key}_name", disk.name,
                          "virtio-scsi needs a CTL port: diskN_dev=custom and diskN_name=/dev/cam/ctl[PP.VP]")
