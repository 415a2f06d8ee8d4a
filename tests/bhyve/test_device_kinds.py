"""One place per bhyve device kind: a module of hivectl/drivers/bhyve/devices/ registered in ``registry.KINDS``.

The guard walks the driver's syntax trees: a comparison with a device-kind string (``kind == "disk"``,
``emulation in ("virtio-blk", "nvme")``, ``disk.type == "virtio-9p"``) outside the kind's own module is a
second place that must learn about every new kind, which is what issue 9 point 5 removes. The plug-in test
adds a device kind without touching any other module and checks it reaches the command line, the
bhyve_config(5) file and the slot order.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from hivectl.drivers.bhyve import render
from hivectl.drivers.bhyve.devices import registry, tpm
from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import OwnSlot, Placement, Rule
from hivectl.model.keys import DISK_TYPES, NIC_TYPES
from tests.bhyve import cases
from tests.bhyve.harness import GOLDEN_ENV, plan_case

DRIVER = Path(__file__).resolve().parents[2] / "hivectl" / "drivers" / "bhyve"
EMULATIONS = ("hostbridge", "amd_hostbridge", "lpc", "ahci", "virtio-rnd", "passthru", "fbuf", "xhci", "hda",
              "virtio-console", *DISK_TYPES, *NIC_TYPES)
DISK_DEVS = ("file", "zvol", "sparse-zvol", "custom", "9p", "iscsi")
TPM_TYPES = ("swtpm", "passthru")


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


class VirtioInput(DeviceKind):
    """A kind bhyve has (virtio-input) and hivectl does not: a test of what adding one takes."""

    name = "input"
    placements = ("input",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        return OwnSlot(self.name) if boot.config.values.get("virt_random") else None

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        return PciDevice(placement, "virtio-input", "/dev/input/event0")


def test_a_new_kind_is_one_module_plugged_into_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in cases.HAND_WRITTEN if c.name == "uefi-devices")
    before = plan_case(case, GOLDEN_ENV)[0][1]
    kinds = list(registry.KINDS)
    kinds.insert(kinds.index(registry.install.KIND), VirtioInput())
    monkeypatch.setattr(registry, "KINDS", tuple(kinds))
    after = plan_case(case, GOLDEN_ENV)[0][1]

    added = [d for d in after.invocation.devices if d.placement.kind == "input"]
    assert len(added) == 1
    addr = added[0].placement.addr
    console = next(d.placement.addr for d in before.invocation.devices if d.placement.kind == "console")
    taken = {d.placement.addr for d in before.invocation.all_devices}
    assert addr.func == 0 and addr > console and addr not in taken  # counted after the last counted kind
    assert render.slot_arg(added[0]) == f"{addr},virtio-input,/dev/input/event0"
    assert f"pci.{addr.bus}.{addr.slot}.{addr.func}.device=virtio-input" in after.config_text.splitlines()
    old = [d for d in after.invocation.devices if d.placement.kind != "input"]
    assert [(d.placement, d.emulation, d.head, d.opts) for d in old] == \
        [(d.placement, d.emulation, d.head, d.opts) for d in before.invocation.devices]
