"""``graphics=yes``: a ``VGA`` adapter (``graphics_res`` as its preferred mode); its VNC server is set up by
``consoles``. ``graphics_vga`` has no QEMU meaning and is ignored (docs/qemu.md)."""

from __future__ import annotations

from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import Props
from hivectl.drivers.qemu.slots import PciDevice


class Graphics(QemuDeviceKind):
    name = "graphics"
    slot_order = 50

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        config = ctx.request.config
        if not config.flag("graphics"):
            return []
        props: Props = []
        resolution = config.get("graphics_res")
        if resolution:
            width, _, height = resolution.partition("x")
            props += [("xres", width), ("yres", height)]
        return [PciDevice("graphics", "VGA", props)]


KIND = Graphics()
