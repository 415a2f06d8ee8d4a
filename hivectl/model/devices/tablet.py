"""``xhci_mouse``: a USB tablet on an xHCI controller, so a VNC pointer tracks (bhyve(8) ``xhci,tablet``)."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, boolean, pci_slot

KEYS = (
    KeySpec("xhci_mouse", boolean, "USB tablet for absolute mouse positioning", "no"),
    KeySpec("xhci_slot", pci_slot, "pinned PCI slot of the USB controller (S, S:F or B:S:F)", hivectl=True),
)
