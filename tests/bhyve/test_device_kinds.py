"""One place per bhyve device kind: a module of hivectl/drivers/bhyve/devices/ that ``registry`` finds.

The guard walks the driver's syntax trees: a comparison with a device-kind string (``kind == "disk"``,
``emulation in ("virtio-blk", "nvme")``, ``disk.type == "virtio-9p"``) outside the kind's own module is a
second place that must learn about every new kind, which is what issue 9 point 5 removes. The plug-in test
writes a new device as files only (its kind module, its keys module) into extra package directories and
checks that it reaches the key table, validation, the slot order, the command line and the bhyve_config(5)
file, with no other module edited.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import hivectl.drivers.bhyve.devices as bhyve_devices
import hivectl.model.devices as model_devices
from hivectl.cli.main import keys_help
from hivectl.drivers.bhyve import render
from hivectl.drivers.bhyve.devices import registry, tpm
from hivectl.model import keys
from hivectl.model.devices import disk, nic
from hivectl.model.devices import tpm as tpm_keys
from hivectl.model.guest import GuestConfig
from hivectl.rcfile import RcFile
from tests.bhyve import cases
from tests.bhyve.harness import GOLDEN_ENV, plan_case

DRIVER = Path(__file__).resolve().parents[2] / "hivectl" / "drivers" / "bhyve"
EMULATIONS = ("hostbridge", "amd_hostbridge", "lpc", "ahci", "virtio-rnd", "passthru", "fbuf", "xhci", "hda",
              "virtio-console", *disk.TYPES, *nic.TYPES)
DISK_DEVS = ("file", "zvol", "sparse-zvol", "custom", "9p", "iscsi")
TPM_TYPES = tpm_keys.TYPES


def kind_strings() -> set[str]:
    """Every string that names a device kind: placements, emulations, disk backings, TPM types."""
    placements = {p for kind in registry.KINDS for p in kind.placements}
    return placements | set(EMULATIONS) | set(DISK_DEVS) | set(TPM_TYPES)


def kind_modules() -> set[Path]:
    """The files allowed to test their own kind's strings: one module per registered kind, and the TPM's."""
    modules = {type(kind).__module__ for kind in registry.KINDS} | {tpm.__name__}
    return {Path(sys.modules[name].__file__ or "").resolve() for name in modules}


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def kind_tests(root: Path, allowed: set[Path], names: set[str]) -> list[str]:
    """``file:line: comparison`` for every comparison with a kind string outside ``allowed``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.resolve() in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare):
                values = [*_strings(node.left), *(s for c in node.comparators for s in _strings(c))]
                if set(values) & names:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_device_kind_is_tested_by_name_outside_its_module() -> None:
    assert kind_tests(DRIVER, kind_modules(), kind_strings()) == []


def test_the_guard_sees_a_kind_test(tmp_path: Path) -> None:
    """The walk finds the shapes the old render/kconfig/devices modules used (so an empty list means something)."""
    (tmp_path / "old.py").write_text('def f(d, kind):\n    if kind == "rnd":\n        return 1\n'
                                     '    return d.emulation in ("virtio-blk", "nvme") or d.dev != "zvol"\n')
    assert len(kind_tests(tmp_path, set(), kind_strings())) == 3


def test_every_module_of_the_package_is_one_registered_kind() -> None:
    package = DRIVER / "devices"
    helpers = {"__init__.py", "base.py", "registry.py", "tpm.py"}
    registered = {Path(sys.modules[type(k).__module__].__file__ or "").name for k in registry.KINDS}
    assert {p.name for p in package.glob("*.py")} - helpers == registered
    assert len({k.name for k in registry.KINDS}) == len(registry.KINDS)
    placements = [p for k in registry.KINDS for p in k.placements]
    assert len(placements) == len(set(placements))


def test_the_discovered_order_is_vm_bhyves_slot_order() -> None:
    """lib/vm-run: host bridge, LPC, then from start_slot disks, NICs, virtio-rnd, passthru, fbuf, xhci, hda,
    virtio-console; the install medium last on the command line."""
    assert [k.name for k in registry.KINDS] == ["hostbridge", "lpc", "disk", "nic", "rnd", "passthru", "fbuf",
                                                "xhci", "hda", "console", "install"]


def test_two_kinds_with_one_slot_order_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[f"{bhyve_devices.__name__}.xhci"].KIND, "slot_order", 80)  # hda's
    with pytest.raises(ValueError, match="hda and xhci have the same order 80"):
        registry.discover()


# A device bhyve has (virtio-input) and hivectl does not, written as a developer would: one kind module in
# the driver's package and one keys module in the model's, nothing else.
KIND_MODULE = """
    from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
    from hivectl.drivers.bhyve.model import PciDevice, check_text
    from hivectl.drivers.bhyve.slots import OwnSlot, Placement, Rule


    class VirtioInput(DeviceKind):
        name = "input"
        slot_order = 95  # after virtio-console: no existing guest's device moves
        placements = ("input",)

        def rule(self, boot: LayoutInput) -> Rule | None:
            return OwnSlot(self.name) if boot.config.flag("virt_input") else None

        def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
            return PciDevice(placement, "virtio-input", check_text(ctx.config.path, "virt_input_device",
                                                                   ctx.config.get("virt_input_device")))


    KIND = VirtioInput()
"""
KEYS_MODULE = """
    from hivectl.model.keyspec import KeySpec, boolean, path

    KEYS = (
        KeySpec("virt_input", boolean, "virtio-input device", "no", hivectl=True),
        KeySpec("virt_input_device", path, "the host evdev device it reads", "/dev/input/event0", hivectl=True),
    )
"""


@pytest.fixture
def plugged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The two modules in extra directories of the two packages, and the tables built again from them."""
    for package, text in ((bhyve_devices, KIND_MODULE), (model_devices, KEYS_MODULE)):
        extra = tmp_path / package.__name__
        extra.mkdir()
        (extra / "virtio_input.py").write_text(textwrap.dedent(text))
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(extra)])
    monkeypatch.setattr(registry, "KINDS", registry.discover())
    monkeypatch.setattr(keys, "KEYS", keys.assemble())
    yield
    for package in (bhyve_devices, model_devices):
        sys.modules.pop(f"{package.__name__}.virtio_input", None)


@pytest.mark.usefixtures("plugged_in")
def test_a_new_device_is_two_files_and_no_edit() -> None:
    spec = keys.spec_for("virt_input_device")
    assert spec is not None and spec.default == "/dev/input/event0"
    assert "virt_input_device" in keys_help()
    bad = GuestConfig(RcFile(Path("g.conf"), 'loader="uefi"\ncpu=1\nmemory=1G\nvirt_input="maybe"\n'), "g").errors()
    assert [(e.key, e.value) for e in bad] == [("virt_input", "maybe")]

    case = next(c for c in cases.HAND_WRITTEN if c.name == "uefi-devices")
    before = plan_case(case, GOLDEN_ENV)[0][1]
    assert not [d for d in before.invocation.devices if d.placement.kind == "input"]  # off by default
    after = plan_case(dataclasses.replace(case, config=case.config + 'virt_input="yes"\n'), GOLDEN_ENV)[0][1]

    added = [d for d in after.invocation.devices if d.placement.kind == "input"]
    assert len(added) == 1
    addr = added[0].placement.addr
    console = next(d.placement.addr for d in before.invocation.devices if d.placement.kind == "console")
    taken = {d.placement.addr for d in before.invocation.all_devices}
    assert addr.func == 0 and addr > console and addr not in taken  # counted after the last counted kind
    assert render.slot_arg(added[0]) == f"{addr},virtio-input,/dev/input/event0"  # the table's default
    assert f"pci.{addr.bus}.{addr.slot}.{addr.func}.device=virtio-input" in after.config_text.splitlines()
    old = [d for d in after.invocation.devices if d.placement.kind != "input"]
    assert [(d.placement, d.emulation, d.head, d.opts) for d in old] == \
        [(d.placement, d.emulation, d.head, d.opts) for d in before.invocation.devices]


