"""The frame buffer (``graphics=yes`` on UEFI guests): ``fbuf,tcp=ADDR:PORT[,w=,h=][,vga=][,password=][,wait]``.

The settings of one boot (port chosen, wait or not) come from ``hivectl.drivers.bhyve.graphics``; a VNC
password is a secret, so a device carrying one makes the planner give bhyve a ``-k`` file instead of argv.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
from hivectl.drivers.bhyve.model import Opt, PciDevice
from hivectl.drivers.bhyve.slots import Placement, Rule, own_slot
from hivectl.records import record


@record(frozen=True)
class Fbuf:
    """The frame buffer of this boot (UEFI guests with ``graphics=yes``)."""

    listen: str
    port: int
    width: str = ""
    height: str = ""
    vga: str = ""
    password: str = ""
    wait: bool = False

    @property
    def address(self) -> str:
        """``ip:port`` as bhyve's ``tcp=`` and the console file want it (IPv6 in brackets)."""
        return f"[{self.listen}]:{self.port}" if ":" in self.listen else f"{self.listen}:{self.port}"


class FrameBuffer(DeviceKind):
    name = "fbuf"
    slot_order = 60
    placements = ("fbuf",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        if not boot.fbuf:
            return None
        return own_slot(self.name, boot.config.path, "graphics_slot", boot.config.get("graphics_slot"))

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        fbuf = ctx.fbuf
        assert fbuf is not None  # placed only when the boot has one (LayoutInput.fbuf)
        opts = [Opt("tcp", fbuf.address)]
        if fbuf.width:
            opts += [Opt("w", fbuf.width), Opt("h", fbuf.height)]
        if fbuf.vga:
            opts.append(Opt("vga", fbuf.vga))
        if fbuf.password:
            opts.append(Opt("password", fbuf.password, secret=True))
        if fbuf.wait:
            opts.append(Opt("wait"))
        return PciDevice(placement, "fbuf", opts=tuple(opts))


KIND = FrameBuffer()
