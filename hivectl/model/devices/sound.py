"""``sound``: the HDA sound device and the host devices it plays to and records from (bhyve(8) hda)."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, boolean, path, pci_slot

KEYS = (
    KeySpec("sound", boolean, "HDA sound device", "no"),
    KeySpec("sound_play", path, "sound playback device", "/dev/dsp0"),
    KeySpec("sound_rec", path, "sound recording device"),
    KeySpec("sound_slot", pci_slot, "pinned PCI slot of the sound device (S, S:F or B:S:F)", hivectl=True),
)
