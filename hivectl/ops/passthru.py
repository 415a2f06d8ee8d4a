"""The host's PCI devices and whether each can be passed through to a guest (``hivectl passthru``).

FreeBSD: one ``pciconf -lv`` run, parsed whole. vm-bhyve runs ``pciconf -lv`` again for every device to
find its description, which is quadratic in the number of devices; the information is all in one run.
A device is ready when ``ppt(4)`` owns it (``pptdevs`` in loader.conf, or ``devctl set driver``).

Linux: the files under ``/sys/bus/pci/devices`` (no process at all). A device is ready when ``vfio-pci``
owns it, which is what QEMU's ``vfio-pci`` device needs. Names come from ``pci.ids`` when the host has
it (the file ``lspci`` reads), else the device's class stands in for a description.

Both give the ``bus/slot/function`` form that ``passthruN`` keys take (decimal, as bhyve reads it; the
QEMU driver turns it into ``0000:BB:SS.F``). Devices outside PCI domain 0 have none: bhyve cannot use
them and the key cannot name them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivectl.host.base import Host

# PCI base classes with the names FreeBSD's pciconf prints on its "class =" line.
CLASS_NAMES = {
    0x00: "old", 0x01: "mass storage", 0x02: "network", 0x03: "display", 0x04: "multimedia", 0x05: "memory",
    0x06: "bridge", 0x07: "simple comms", 0x08: "base peripheral", 0x09: "input device",
    0x0A: "docking station", 0x0B: "processor", 0x0C: "serial bus", 0x0D: "wireless",
    0x0E: "intelligent I/O controller", 0x0F: "satellite communication", 0x10: "encrypt/decrypt",
    0x11: "dasp", 0x12: "processing accelerators", 0x13: "non-essential instrumentation",
}
PCI_IDS = ("usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids", "usr/share/pci.ids")

# "ppt0@pci0:2:0:0:<TAB>class=0x020000 rev=0x01 ..." (older releases: "card=0x... chip=0x...")
_HEAD = re.compile(r"(?P<driver>[A-Za-z_][A-Za-z0-9_]*?)(?P<unit>[0-9]+)@pci(?P<domain>[0-9]+):(?P<bus>[0-9]+):"
                   r"(?P<slot>[0-9]+):(?P<func>[0-9]+):\s+(?P<fields>.*)")
_FIELD = re.compile(r"([a-z]+)=0x([0-9a-fA-F]+)")
_DETAIL = re.compile(r"\s+([a-z]+)\s*=\s*(.*)")
_SYSFS_NAME = re.compile(r"([0-9a-f]{4,}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])")


@dataclass(frozen=True)
class PciDevice:
    """One host PCI device as ``passthru`` shows it."""

    device: str  # FreeBSD: driver and unit (ppt0, em0, none2); Linux: the address (0000:01:00.0)
    driver: str  # ppt, em, none / vfio-pci, e1000e, "" when unbound
    domain: int
    bus: int
    slot: int
    func: int
    vendor_id: int
    device_id: int
    ready: bool
    description: str
    vendor: str = ""
    class_name: str = ""
    iommu_group: str | None = None  # Linux only

    @property
    def bhyve(self) -> str | None:
        """The ``passthruN`` value for this device, or None outside domain 0 (bhyve cannot use it)."""
        return f"{self.bus}/{self.slot}/{self.func}" if self.domain == 0 else None

    @property
    def pci_id(self) -> str:
        return f"{self.vendor_id:04x}:{self.device_id:04x}"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "device": self.device, "driver": self.driver or None,
            "address": f"{self.domain}:{self.bus}:{self.slot}:{self.func}", "bhyve": self.bhyve,
            "id": self.pci_id, "vendor_id": f"{self.vendor_id:04x}", "device_id": f"{self.device_id:04x}",
            "ready": self.ready, "description": self.description or None, "vendor": self.vendor or None,
            "class": self.class_name or None,
        }
        data["iommu_group"] = self.iommu_group  # Linux: vfio hands whole IOMMU groups to a guest
        return data


# -- FreeBSD ----------------------------------------------------------------------------------------------
def parse_pciconf(text: str) -> list[PciDevice]:
    """Devices from ``pciconf -lv`` output; lines it does not know (newer fields, -b/-c output) are skipped."""
    blocks: list[tuple[re.Match[str], dict[str, str]]] = []
    for line in text.splitlines():
        head = _HEAD.fullmatch(line.rstrip())
        if head:
            blocks.append((head, {}))
            continue
        detail = _DETAIL.fullmatch(line.rstrip())
        if detail and blocks and detail[1] not in blocks[-1][1]:
            value = detail[2].strip()
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            blocks[-1][1][detail[1]] = value
    return [_pciconf_device(head, details) for head, details in blocks]


def _pciconf_device(head: re.Match[str], details: dict[str, str]) -> PciDevice:
    fields = {k: int(v, 16) for k, v in _FIELD.findall(head["fields"])}
    vendor_id, device_id = fields.get("vendor", 0), fields.get("device", 0)
    if "vendor" not in fields and "chip" in fields:  # before FreeBSD 13: chip=0xDDDDVVVV
        vendor_id, device_id = fields["chip"] & 0xFFFF, fields["chip"] >> 16
    driver, domain = head["driver"], int(head["domain"])
    class_name = details.get("class") or CLASS_NAMES.get(fields.get("class", -1) >> 16, "")
    return PciDevice(f"{driver}{head['unit']}", driver, domain, int(head["bus"]), int(head["slot"]),
                     int(head["func"]), vendor_id, device_id, driver == "ppt" and domain == 0,
                     details.get("device", ""), details.get("vendor", ""), class_name)


def freebsd_devices(host: Host) -> list[PciDevice]:
    """Every PCI device of a FreeBSD host from a single ``pciconf -lv``."""
    return parse_pciconf(host.run(["pciconf", "-lv"]).stdout)


# -- Linux ------------------------------------------------------------------------------------------------
def _read_hex(path: Path) -> int:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return 0


def _link_name(path: Path) -> str | None:
    """The last part of a symlink's target (a device's ``driver`` or ``iommu_group``), or None."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def pci_names(root: Path, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str]]:
    """(vendor name, device name) for the wanted (vendor, device) ids, from the host's ``pci.ids``.

    One pass over the file, stopping at its class section; ids it lacks are simply left out.
    """
    found: dict[tuple[int, int], tuple[str, str]] = {}
    path = next((root / relative for relative in PCI_IDS if (root / relative).is_file()), None)
    if path is None or not wanted:
        return found
    vendors = {vendor for vendor, _ in wanted}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            vendor_id, vendor_name = -1, ""
            for line in handle:
                if not line.strip() or line[0] == "#":
                    continue
                if line.startswith("C "):
                    break
                if line[0] != "\t":
                    vendor_id, vendor_name = _id_line(line)
                    for key in wanted:
                        if key[0] == vendor_id:
                            found.setdefault(key, (vendor_name, ""))
                elif vendor_id in vendors and line[1] != "\t":
                    device_id, device_name = _id_line(line[1:])
                    if (vendor_id, device_id) in wanted:
                        found[(vendor_id, device_id)] = (vendor_name, device_name)
    except OSError:
        pass
    return found


def _id_line(line: str) -> tuple[int, str]:
    """``8086  Intel Corporation`` → (0x8086, "Intel Corporation"); (-1, "") for anything else."""
    code, _, name = line.rstrip("\n").partition(" ")
    try:
        return int(code, 16), name.strip()
    except ValueError:
        return -1, ""


def linux_devices(root: Path = Path("/")) -> list[PciDevice]:
    """Every PCI device under ``root``/sys/bus/pci/devices, read from its sysfs files."""
    base = root / "sys/bus/pci/devices"
    try:
        entries = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    raw = []
    for name in entries:
        match = _SYSFS_NAME.fullmatch(name)
        if match is None:
            continue
        where = base / name
        domain, bus, slot, func = (int(part, 16) for part in match.groups())
        raw.append((name, (domain, bus, slot, func), _read_hex(where / "vendor"), _read_hex(where / "device"),
                    _read_hex(where / "class"), _link_name(where / "driver") or "", _link_name(where / "iommu_group")))
    names_by_id = pci_names(root, {(vendor, device) for _, _, vendor, device, _, _, _ in raw})
    devices = []
    for name, (domain, bus, slot, func), vendor, device, pci_class, driver, group in raw:
        class_name = CLASS_NAMES.get(pci_class >> 16, "")
        vendor_name, device_name = names_by_id.get((vendor, device), ("", ""))
        devices.append(PciDevice(name, driver, domain, bus, slot, func, vendor, device,
                                 driver == "vfio-pci" and domain == 0, device_name or class_name, vendor_name,
                                 class_name, group))
    return devices


def host_devices(host: Host) -> list[PciDevice]:
    """The PCI devices of ``host``: pciconf on FreeBSD, sysfs (under the host's root) on Linux."""
    if host.platform == "freebsd":
        return freebsd_devices(host)
    return linux_devices(host.root)
