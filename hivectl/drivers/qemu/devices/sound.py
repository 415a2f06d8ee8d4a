"""``sound=yes``: ``ich9-intel-hda`` + ``hda-duplex`` on a silent audio backend (the guest sees bhyve's hda)."""

from __future__ import annotations

from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import join
from hivectl.drivers.qemu.slots import PciDevice


class Sound(QemuDeviceKind):
    name = "sound"
    slot_order = 70

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        if not ctx.request.config.flag("sound"):
            return []
        return [PciDevice("sound", "ich9-intel-hda", [("id", "hda")],
                          before=["-audiodev", join("none", [("id", "snd0")])],
                          after=["-device", join("hda-duplex", [("bus", "hda.0"), ("audiodev", "snd0")])])]


KIND = Sound()
