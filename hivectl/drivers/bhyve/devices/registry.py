"""Every bhyve device kind, in the order vm-bhyve places them (``lib/vm-run``).

Host bridge and LPC at their fixed slots; from ``start_slot``: disks, NICs, virtio-rnd, passthru, then
fbuf, xhci, hda and virtio-console each on a new slot; the install medium at ``install_slot``. The order
is the slot order and the command-line order, so guests keep their PCI addresses: add a new kind where
vm-bhyve would place it (at the end, before ``install``, if vm-bhyve has no such device).
"""

from __future__ import annotations

from hivectl.drivers.bhyve.devices import (
    console,
    disk,
    fbuf,
    hda,
    hostbridge,
    install,
    lpc,
    nic,
    passthru,
    virtio_rnd,
    xhci,
)
from hivectl.drivers.bhyve.devices.base import DeviceKind
from hivectl.drivers.bhyve.model import PciDevice

KINDS: tuple[DeviceKind, ...] = (
    hostbridge.KIND, lpc.KIND, disk.KIND, nic.KIND, virtio_rnd.KIND, passthru.KIND,
    fbuf.KIND, xhci.KIND, hda.KIND, console.KIND, install.KIND,
)


def for_placement(placement_kind: str) -> DeviceKind:
    """The kind that builds the devices of placements of ``placement_kind`` (looked up when asked, so a
    test can plug a kind in)."""
    for kind in KINDS:
        if placement_kind in kind.placements:
            return kind
    raise KeyError(placement_kind)


def kind_of(device: PciDevice) -> DeviceKind:
    """The kind that built ``device`` (by its placement)."""
    return for_placement(device.placement.kind)
