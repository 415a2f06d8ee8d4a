"""``sound=yes``: the hda sound device playing to ``sound_play`` and recording from ``sound_rec`` (bhyve(8))."""

from __future__ import annotations

from hivectl.drivers.bhyve.devices.base import DeviceContext, DeviceKind, LayoutInput
from hivectl.drivers.bhyve.model import Opt, PciDevice, check_text
from hivectl.drivers.bhyve.slots import Placement, Rule, own_slot


class Hda(DeviceKind):
    name = "hda"
    slot_order = 80
    placements = ("hda",)

    def rule(self, boot: LayoutInput) -> Rule | None:
        if not boot.config.flag("sound"):
            return None
        return own_slot(self.name, boot.config.path, "sound_slot", boot.config.get("sound_slot"))

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        source = ctx.config.path
        opts = [Opt("play", check_text(source, "sound_play", ctx.config.get("sound_play")))]
        rec = ctx.config.get("sound_rec")
        if rec:
            opts.append(Opt("rec", check_text(source, "sound_rec", rec)))
        return PciDevice(placement, "hda", opts=tuple(opts))


KIND = Hda()
