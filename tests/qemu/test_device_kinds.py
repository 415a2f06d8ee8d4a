"""One place per QEMU device kind: a module of hivectl/drivers/qemu/devices/ that ``registry`` finds.

Same rule and same AST walk as the bhyve driver's (tests/bhyve/test_device_kinds.py): comparing a disk
type, NIC type, disk backing or QEMU device name outside the kind's module is a second place to teach.
The plug-in test writes a kind module into an extra directory of the package and finds its device on the
command line, after every existing device, with no other module edited.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import hivectl.drivers.qemu.devices as qemu_devices
from hivectl.drivers.qemu.devices import registry
from hivectl.model.devices import disk, nic
from tests.bhyve.test_device_kinds import DISK_DEVS, kind_tests
from tests.qemu.cases import CASES
from tests.qemu.guests import Scratch
from tests.qemu.test_argv_golden import normalise, render

DRIVER = Path(__file__).resolve().parents[2] / "hivectl" / "drivers" / "qemu"
QEMU_DEVICES = ("ich9-ahci", "ide-hd", "ide-cd", "virtio-blk-pci", "nvme", "virtio-scsi-pci", "scsi-hd",
                "virtio-9p-pci", "virtio-net-pci", "e1000", "virtio-rng-pci", "vfio-pci", "VGA", "qemu-xhci",
                "ich9-intel-hda", "virtio-serial-pci")


def _module_file(kind: object) -> Path:
    return Path(sys.modules[type(kind).__module__].__file__ or "").resolve()


def test_no_device_kind_is_tested_by_name_outside_its_module() -> None:
    names = set(disk.TYPES) | set(nic.TYPES) | set(DISK_DEVS) | set(QEMU_DEVICES)
    assert kind_tests(DRIVER, {_module_file(k) for k in registry.KINDS}, names) == []


def test_every_module_of_the_package_is_one_registered_kind() -> None:
    helpers = {"__init__.py", "base.py", "registry.py"}
    registered = {_module_file(k).name for k in registry.KINDS}
    assert {p.name for p in (DRIVER / "devices").glob("*.py")} - helpers == registered
    assert len({k.name for k in registry.KINDS}) == len(registry.KINDS)


def test_the_discovered_order_is_vm_bhyves_device_order() -> None:
    assert [k.name for k in registry.KINDS] == ["install", "disk", "nic", "rng", "passthru", "graphics", "usb",
                                                "sound", "virt_console"]


KIND_MODULE = """
    from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
    from hivectl.drivers.qemu.slots import PciDevice


    class Input(QemuDeviceKind):
        name = "input"
        slot_order = 90  # after the virtio consoles: no existing device moves

        def devices(self, ctx: DeviceContext) -> list[PciDevice]:
            if not ctx.request.config.flag("virt_random"):
                return []
            return [PciDevice("virt_input", "virtio-tablet-pci")]


    KIND = Input()
"""


def _slot(arg: str) -> int:
    return int(arg.split("addr=")[1].split(".")[0], 16)


def test_a_new_kind_is_one_file(scratch: Scratch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if "virt_random" in c.conf)
    ref, plan = render(scratch, case)
    before = [normalise(a, scratch, ref) for a in plan.hypervisor]
    (tmp_path / "virtio_input.py").write_text(textwrap.dedent(KIND_MODULE))
    monkeypatch.setattr(qemu_devices, "__path__", [*qemu_devices.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "KINDS", registry.discover())
    again = Scratch(Path(tempfile.mkdtemp(prefix="hq-", dir="/tmp")))
    try:
        ref, plan = render(again, case)
        after = [normalise(a, again, ref) for a in plan.hypervisor]
    finally:
        sys.modules.pop(f"{qemu_devices.__name__}.virtio_input", None)
        shutil.rmtree(again.root, ignore_errors=True)
    added = [a for a in after if a.startswith("virtio-tablet-pci,")]
    assert len(added) == 1
    assert _slot(added[0]) not in {_slot(a) for a in before if "addr=0x" in a}
    index = after.index(added[0])
    assert after[:index - 1] + after[index + 1:] == before  # nothing else changed
    assert index - 1 > max(i for i, a in enumerate(before) if a == "-device")  # after every existing device
