"""Every bhyve device kind, found in this package and sorted into the order vm-bhyve places them (``lib/vm-run``).

Host bridge and LPC at their fixed slots; from ``start_slot``: disks, NICs, virtio-rnd, passthru, then
fbuf, xhci, hda and virtio-console each on a new slot; the install medium at ``install_slot``. The order
is the slot order and the command-line order, so guests keep their PCI addresses. A kind is a module of
this package with ``KIND``; ``discover`` imports every module and sorts the kinds by ``slot_order``
(hivectl/drivers/bhyve/devices/base.py), so adding a kind adds no line here.
"""

from __future__ import annotations

import sys

from hivectl.drivers.bhyve.devices.base import DeviceKind
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.model.modules import entries

_PACKAGE = __name__.rpartition(".")[0]


def discover() -> tuple[DeviceKind, ...]:
    """The ``KIND`` of every module of the package (helpers have none), in ``slot_order``; two kinds with
    one ``slot_order`` or one placement kind would make the order or the lookup ambiguous and are refused."""
    kinds = entries(_PACKAGE, sys.modules[_PACKAGE].__path__, "KIND", DeviceKind, lambda k: k.slot_order,
                    lambda k: k.name, "bhyve device kinds")
    placements = [p for k in kinds for p in k.placements]
    if len(set(placements)) != len(placements):
        raise ValueError(f"two bhyve device kinds build the same placement kind: {sorted(placements)}")
    return kinds


KINDS: tuple[DeviceKind, ...] = discover()


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
