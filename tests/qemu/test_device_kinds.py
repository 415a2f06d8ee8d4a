"""One place per QEMU device kind: a module of hivectl/drivers/qemu/devices/ registered in ``registry.KINDS``.

Same rule and same AST walk as the bhyve driver's (tests/bhyve/test_device_kinds.py): comparing a disk
type, NIC type, disk backing or QEMU device name outside the kind's module is a second place to teach.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hivectl.drivers.qemu.devices import registry
from hivectl.model.keys import DISK_TYPES, NIC_TYPES
from tests.bhyve.test_device_kinds import DISK_DEVS, kind_tests

DRIVER = Path(__file__).resolve().parents[2] / "hivectl" / "drivers" / "qemu"
QEMU_DEVICES = ("ich9-ahci", "ide-hd", "ide-cd", "virtio-blk-pci", "nvme", "virtio-scsi-pci", "scsi-hd",
                "virtio-9p-pci", "virtio-net-pci", "e1000", "virtio-rng-pci", "vfio-pci", "VGA", "qemu-xhci",
                "ich9-intel-hda", "virtio-serial-pci")


def _module_file(kind: object) -> Path:
    return Path(sys.modules[type(kind).__module__].__file__ or "").resolve()


def test_no_device_kind_is_tested_by_name_outside_its_module() -> None:
    names = set(DISK_TYPES) | set(NIC_TYPES) | set(DISK_DEVS) | set(QEMU_DEVICES)
    assert kind_tests(DRIVER, {_module_file(k) for k in registry.KINDS}, names) == []


def test_every_module_of_the_package_is_one_registered_kind() -> None:
    helpers = {"__init__.py", "base.py", "registry.py"}
    registered = {_module_file(k).name for k in registry.KINDS}
    assert {p.name for p in (DRIVER / "devices").glob("*.py")} - helpers == registered
    assert len({k.name for k in registry.KINDS}) == len(registry.KINDS)
