"""Disks: ``diskN_type``, ``diskN_name``, ``diskN_dev`` and the rest of a ``diskN_*`` group (vm-bhyve's
config.sample), the AHCI sharing limit and the properties zvol disks are created with."""

from __future__ import annotations

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.model import backing
from hivectl.model.keyspec import KeySpec, Source, choice, integer, path, pci_slot, zfs_properties
from hivectl.safety import values

TYPES = ("virtio-blk", "ahci-hd", "ahci-cd", "nvme", "virtio-scsi", "virtio-9p")
CD = "ahci-cd"  # a read-only medium: never resized, never backed up as a disk, never copied as new disks' type


def is_cd(disk_type: str) -> bool:
    """True for a CD drive (an install ISO, the cloud-init seed)."""
    return disk_type == CD


def _opts(source: Source, key: str, value: str) -> None:
    """Options bhyve defines for some disk device (the type's own set is checked where the device is built)."""
    if " " in value.strip():
        raise ConfigError(source, key, value, "options are comma-separated with no spaces")
    values.any_disk_options(source, key, value)


def _size(source: Source, key: str, value: str) -> None:
    validate.disk_size(source, key, value)


KEYS = (
    KeySpec("ahci_device_limit", integer(1, 32), "put up to this many ahci disks on one controller", "1"),
    KeySpec("diskN_type", choice(*TYPES), "disk emulation"),
    KeySpec("diskN_name", path, "disk file/zvol name in the guest directory, a full path for custom, "
            "share=/path for 9p"),
    KeySpec("diskN_dev", choice(*backing.NAMES), "what backs the disk", backing.DEFAULT),
    KeySpec("diskN_opts", _opts, "comma-separated disk options (nocache, direct, ro, sectorsize=...)"),
    KeySpec("diskN_size", _size, "size for create (templates only; removed from the guest)", "20G",
            template_only=True),
    KeySpec("diskN_slot", pci_slot, "pinned PCI slot (S, S:F or B:S:F) so other devices never move it; "
            "ahci-hd/ahci-cd disks pinned to one address share one AHCI controller there", hivectl=True),
    KeySpec("zfs_zvol_opts", zfs_properties, "properties for zvol disks"),
)
