"""``virt_random``: a virtio random number generator fed by the host (bhyve(8) virtio-rnd)."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, boolean, pci_slot

KEYS = (
    KeySpec("virt_random", boolean, "add a virtio-rnd device", "no"),
    KeySpec("virt_random_slot", pci_slot, "pinned PCI slot of the virtio-rnd device (S, S:F or B:S:F)", hivectl=True),
)
