"""The vocabulary of the key table: ``KeySpec`` (one configuration key) and the checks keys are declared with.

Guest-level keys (hivectl/model/keys.py) and the keys of each device (hivectl/model/devices/) are written
with these, so a check means the same wherever a key is declared and every refusal is one ``ConfigError``
naming the file, the key and the value (hivectl/validate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.records import record
from hivectl.safety import values

Source = str | Path | None
Check = Callable[[Source, str, str], object]


@record(frozen=True)
class KeySpec:
    """One configuration key: its name pattern, how to check a value, and what it means."""

    pattern: str
    check: Check
    meaning: str
    default: str = ""
    hivectl: bool = False
    template_only: bool = False


def any_text(source: Source, key: str, value: str) -> None:
    """Free text (raw options and commands): only the file format's own limits apply."""


def boolean(source: Source, key: str, value: str) -> None:
    """yes/no, as vm-bhyve's checkyesno reads it."""
    validate.boolean(source, key, value)


def choice(*allowed: str) -> Check:
    """One of ``allowed`` exactly."""
    def check(source: Source, key: str, value: str) -> None:
        validate.choice(source, key, value, allowed)
    return check


def integer(low: int, high: int) -> Check:
    """A whole number from ``low`` to ``high``."""
    def check(source: Source, key: str, value: str) -> None:
        validate.integer(source, key, value, low, high)
    return check


def path(source: Source, key: str, value: str) -> None:
    """A host path that can be given to bhyve as one option value (no ',' or '=' can split it)."""
    validate.plain_path(source, key, value)
    values.bhyve_value(source, key, value)


def pci_slot(source: Source, key: str, value: str) -> None:
    """A pinned PCI position: ``S``, ``S:F`` or ``B:S:F`` (bus 0..255, slot 0..31, function 0..7)."""
    parts = value.split(":")
    limits = {1: [(0, 31)], 2: [(0, 31), (0, 7)], 3: [(0, 255), (0, 31), (0, 7)]}.get(len(parts), [])
    if not limits or not all(p.isdigit() and lo <= int(p) <= hi for p, (lo, hi) in zip(parts, limits, strict=True)):
        raise ConfigError(source, key, value, "expected a PCI slot as S, S:F or B:S:F (slot 0-31, function 0-7)")
    slot = int(parts[-2] if len(parts) >= 2 else parts[0])
    if slot in (0, 31) and (len(parts) < 3 or parts[0] == "0"):
        raise ConfigError(source, key, value, "slots 0 (hostbridge) and 31 (lpc) on bus 0 are reserved")


def zfs_properties(source: Source, key: str, value: str) -> None:
    """``prop=value`` pairs for ``zfs create -o`` (hivectl/safety/values.py)."""
    values.zfs_properties(source, key, value)
