"""The LPC bridge's devices: the COM ports (``comports``) and the firmware configuration interface
(``fwcfg``), bhyve(8) ``-l``."""

from __future__ import annotations

from hivectl import patterns
from hivectl.errors import ConfigError
from hivectl.model.keyspec import KeySpec, Source, choice

COM_PORTS = ("com1", "com2", "com3", "com4")


def _comports(source: Source, key: str, value: str) -> None:
    ports = value.split()
    if not ports or any(p not in COM_PORTS for p in ports) or len(set(ports)) != len(ports):
        raise ConfigError(source, key, value, "expected a space-separated list of com1..com4 without repeats")


def _lpc_slot(source: Source, key: str, value: str) -> None:
    """The LPC bridge's slot: bus 0 only (bhyve's pci_lpc.c refuses others), never slot 0 (the host bridge)."""
    match = patterns.fullmatch(r"([0-9]{1,2})(?::[0-7])?|0:([0-9]{1,2}):[0-7]", value)
    if not match or not 1 <= int(match.group(1) or match.group(2)) <= 31:
        raise ConfigError(source, key, value, "expected a slot of bus 0 as S or S:F (slot 1-31, function 0-7)")


KEYS = (
    KeySpec("fwcfg", choice("bhyve", "qemu"), "firmware configuration interface flavour"),
    KeySpec("lpc_slot", _lpc_slot, "bhyve: the LPC bridge's slot on bus 0 (S or S:F) instead of 31, for guests "
            "imported with their own layout", hivectl=True),
    KeySpec("comports", _comports, "serial ports on nmdm devices, the first is the console", "com1"),
)
