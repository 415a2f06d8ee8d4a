"""The install medium's slot and vm-bhyve's ``nulliso_fix`` (an empty CD at that slot on normal boots)."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, boolean, integer

KEYS = (
    KeySpec("install_slot", integer(1, 30), "PCI slot of the install ISO", "3"),
    KeySpec("nulliso_fix", boolean, "attach an empty CD when not installing (uefi only)", "no"),
)
