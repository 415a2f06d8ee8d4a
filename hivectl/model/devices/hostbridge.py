"""``hostbridge``: the PCI host bridge model at bus 0 slot 0 (vm-bhyve's config.sample)."""

from __future__ import annotations

from hivectl.model.keyspec import KeySpec, choice

KEYS = (KeySpec("hostbridge", choice("standard", "amd", "none", "no"), "PCI host bridge model at slot 0",
                "standard"),)
