"""What every bhyve device kind answers, and the context a boot's devices are built in.

A device kind is one module of this package holding one ``DeviceKind``: where its devices go on the PCI
bus (a placement rule of ``slots``), how each is built from the guest config (a ``PciDevice`` with
structured options), the text bhyve(8) gets after ``-s B:S:F,<emulation>,`` and the bhyve_config(5)
keys of the same device for ``bhyve -k``. ``registry.KINDS`` holds every kind the package's modules
declare, sorted by ``slot_order`` into vm-bhyve's slot order (``lib/vm-run``); the allocator, the builder
and both renderers iterate it and ask the kind, so no other module tests a device kind by name
(``tests/bhyve/test_device_kinds.py`` keeps it that way). The kind's config keys are declared, for every
driver, in its module of hivectl/model/devices/.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hivectl.drivers.bhyve.model import Opt, PciDevice
from hivectl.drivers.bhyve.slots import Placement, Rule
from hivectl.model.guest import GuestConfig
from hivectl.net.ports import Port
from hivectl.records import record
from hivectl.safety.values import bhyve_option_name, bhyve_token
from hivectl.store import GuestRef

if TYPE_CHECKING:
    from hivectl.drivers.bhyve.devices.fbuf import Fbuf

Pairs = list[tuple[str, str]]


@record(frozen=True)
class LayoutInput:
    """What decides which devices a boot places: the config, and what this boot attaches besides it."""

    config: GuestConfig
    install: bool  # something sits at install_slot on this boot
    fbuf: bool  # the frame buffer is on (UEFI with graphics=yes)
    install_slot: int


@record
class DeviceContext:
    """What one boot's devices depend on besides the config."""

    ref: GuestRef
    config: GuestConfig
    ports: dict[int, Port]
    install_media: Path | None = None  # attached at install_slot on this boot
    null_iso: Path | None = None  # nulliso_fix's empty CD on this boot
    fbuf: Fbuf | None = None


def numbered(config: GuestConfig, prefix: str) -> list[tuple[int, str]]:
    """``passthru0``, ``passthru1``… or ``virt_console0``…: up to the first missing one (vm-bhyve's rule)."""
    found = []
    index = 0
    while config.values.get(f"{prefix}{index}", ""):
        found.append((index, config.values[f"{prefix}{index}"]))
        index += 1
    return found


def opt_text(opt: Opt) -> str:
    """One ``name[=value]`` item, checked so that no value can split into a second option (hivectl/safety)."""
    bhyve_option_name(opt.name)
    return opt.name if opt.value is None else f"{opt.name}={bhyve_token(opt.value)}"


def opt_pairs(prefix: str, opts: tuple[Opt, ...]) -> Pairs:
    """Options as bhyve_config(5) keys under ``prefix``; a bare option is ``true``."""
    return [(f"{prefix}.{o.name}", "true" if o.value is None else o.value) for o in opts]


def generic_pairs(prefix: str, text: str) -> Pairs:
    """Options written ``a=b,c`` inside a head token (a NIC backend's ``type=tap``, netgraph's ``path=``)."""
    pairs: Pairs = []
    for item in text.split(","):
        name, sep, value = item.partition("=")
        pairs.append((f"{prefix}.{name}", value if sep else "true"))
    return pairs


class DeviceKind:
    """One kind of bhyve PCI device. The defaults fit a device written ``<emulation>[,<head>][,opts]``.

    ``placements`` are the ``Placement.kind`` values this kind builds (the disk kind also builds the
    shared AHCI controller); ``slot_order`` places the kind among the others: counted slots are handed out
    and devices written in increasing ``slot_order`` (vm-bhyve's order: host bridge 0, LPC 10, disks 20,
    NICs 30, virtio-rnd 40, passthru 50, fbuf 60, xhci 70, hda 80, virtio-console 90, the install medium
    1000; a kind vm-bhyve lacks takes a free number after 90, so no existing guest's addresses move);
    ``after_options`` puts the device after the other flags, where vm-bhyve puts the install medium;
    ``wires_memory`` means bhyve needs ``-S`` (passthru, bhyve(8)).
    """

    name = ""
    slot_order = -1
    placements: tuple[str, ...] = ()
    after_options = False
    wires_memory = False

    def rule(self, boot: LayoutInput) -> Rule | None:
        """How this boot's devices of this kind are placed; None when the config asks for none."""
        raise NotImplementedError

    def build(self, ctx: DeviceContext, placement: Placement, built: list[PciDevice]) -> PciDevice:
        """The device at ``placement`` (``built``: the devices before it, in command-line order)."""
        raise NotImplementedError

    def head_text(self, device: PciDevice, head: str) -> str:
        """The positional first token as bhyve gets it, checked by hivectl/safety's bhyve rule."""
        return bhyve_token(head)

    def conf(self, device: PciDevice) -> str:
        """The text after ``<emulation>,`` in ``-s``; empty when the device has no configuration.

        Every item goes through ``hivectl.safety.values``' bhyve rule here, where the string is built, so a
        value that slipped past the config checks still cannot add an option.
        """
        head = [self.head_text(device, device.head)] if device.head is not None else []
        return ",".join(head + [opt_text(o) for o in device.opts])

    def head_keys(self, device: PciDevice, node: str) -> Pairs:
        """The bhyve_config(5) keys of the head token, named as the device's own option parser names them."""
        return []

    def keys(self, device: PciDevice, node: str) -> Pairs:
        """Every ``pci.B.S.F.*`` key of the device (``node`` is ``pci.B.S.F``)."""
        return [(f"{node}.device", device.emulation), *self.head_keys(device, node),
                *opt_pairs(node, device.opts)]

    def opts_key(self, device: PciDevice) -> str:
        """The config key an error about the device's options names."""
        return device.placement.members[0]

    def sockets(self, device: PciDevice) -> list[Path]:
        """Unix sockets bhyve binds for the device and never removes (removed before each start)."""
        return []
