"""``virt_consoleN``: the ports of the virtio-console device, each a Unix socket in the guest directory."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, any_text, pci_slot

KEYS = (
    KeySpec("virt_consoleN", any_text, "virtio-console port: yes for a numbered port, or a port name"),
    KeySpec("virt_console_slot", pci_slot, "pinned PCI slot of the virtio-console device (S, S:F or B:S:F)",
            hivectl=True),
)
