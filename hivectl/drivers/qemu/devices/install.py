"""The install medium on the first boot of an install: its own AHCI controller at ``install_slot``, first in
the boot order. vm-bhyve attaches ``*.iso`` as ahci-cd and any other file as a read-only ahci-hd; so does this.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.devices.disk import INSTALL_BOOTINDEX, DiskOptions, drive_args
from hivectl.drivers.qemu.options import join
from hivectl.drivers.qemu.slots import PciDevice


def install_device(media: Path, install_slot: str) -> PciDevice:
    """The install ISO (or image) on its own AHCI controller at ``install_slot``."""
    cdrom = media.suffix.lower() == ".iso"
    fmt = "qcow2" if media.name.endswith(".qcow2") else "raw"  # by name, as for disks (see ``disk.file_format``)
    drive = drive_args("install0", media, fmt, DiskOptions(readonly=True), cdrom=cdrom)
    device = join("ide-cd" if cdrom else "ide-hd", [("bus", "ahci-install.0"), ("drive", "install0"),
                                                    ("bootindex", str(INSTALL_BOOTINDEX))])
    return PciDevice("install media", "ich9-ahci", [("id", "ahci-install")], install_slot, "install_slot",
                     after=[*drive, "-device", device])


class Install(QemuDeviceKind):
    name = "install"
    slot_order = 0

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        request = ctx.request
        if request.install_media is None or not request.first_boot:
            return []
        return [install_device(request.install_media, request.config.get("install_slot"))]


KIND = Install()
