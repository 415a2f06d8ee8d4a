"""The install medium at ``install_slot`` (and ``nulliso_fix``'s empty CD): last on the command line.

vm-bhyve writes ``-s S:0,ahci-cd,<iso>,ro,bootindex=1`` after the other flags (``lib/vm-run``); other
images are ``ahci-hd,<img>,ro``. Counted devices step over the install slot only on boots that use it.
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput, Pairs
from hivectl.drivers.bhyve.devices.disk import single_port_keys
from hivectl.drivers.bhyve.model import Opt, PciDevice, check_text
from hivectl.drivers.bhyve.slots import Fixed, PciAddr, Placement, Rule
from hivectl.model.guest import GuestConfig


def nulliso_attached(config: GuestConfig, installing: bool) -> bool:
    """vm-bhyve's nulliso_fix: an empty CD on normal boots, only for ``loader=uefi`` exactly."""
    return not installing and config.loader == "uefi" and config.flag("nulliso_fix")


class Install(DeviceKind):
    name = "install"
    slot_order = 1000
    placements = ("install",)
    after_options = True

    def rule(self, boot: LayoutInput) -> Rule | None:
        if not boot.install:
            return None
        return Fixed(self.name, PciAddr(0, boot.install_slot), f"{boot.install_slot}:0", reserve=True)

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        """``bootindex=1`` makes the firmware try the medium first; if a disk already claims 1 (a guest set up
        to prefer its disk), the medium takes 0 so that installing still works instead of failing on a clash.
        """
        if ctx.install_media is None:
            assert ctx.null_iso is not None
            return PciDevice(placement, "ahci-cd", check_text(None, "null.iso", str(ctx.null_iso)))
        media = check_text(None, "install media", str(ctx.install_media))
        if media.lower().endswith(".iso"):
            used = {o.value for d in built for o in [*d.opts, *(x for p in d.ports for x in p.opts)]
                    if o.name == "bootindex"}
            index = "0" if "1" in used and "0" not in used else "1"
            return PciDevice(placement, "ahci-cd", media, (Opt("ro"), Opt("bootindex", index)))
        return PciDevice(placement, "ahci-hd", media, (Opt("ro"),))

    def keys(self, device: PciDevice, node: str) -> Pairs:
        return single_port_keys(device, node)

    def opts_key(self, device: PciDevice) -> str:
        return "install media"


KIND = Install()
