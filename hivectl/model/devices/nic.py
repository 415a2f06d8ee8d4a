"""NICs: the ``networkN_*`` group of each guest network interface (vm-bhyve's config.sample)."""

from __future__ import annotations

from hivectl import patterns, validate
from hivectl.errors import ConfigError
from hivectl.model.keyspec import KeySpec, Source, boolean, choice, pci_slot

TYPES = ("virtio-net", "e1000")


def _switch(source: Source, key: str, value: str) -> None:
    validate.name(source, key, value, "switch name")


def _ifname(source: Source, key: str, value: str) -> None:
    if not patterns.fullmatch(r"[A-Za-z][A-Za-z0-9_.]{0,14}", value):
        raise ConfigError(source, key, value, "expected a network interface name (letters, digits, '_', "
                                              "'.', at most 15 characters)")


def _mac(source: Source, key: str, value: str) -> None:
    validate.mac(source, key, value)


def _mtu(source: Source, key: str, value: str) -> None:
    validate.mtu(source, key, value)


KEYS = (
    KeySpec("networkN_type", choice(*TYPES), "NIC emulation"),
    KeySpec("networkN_switch", _switch, "virtual switch the NIC's tap joins"),
    KeySpec("networkN_device", _ifname, "use this existing interface instead of creating a tap"),
    KeySpec("networkN_name", _ifname, "stable name for the tap hivectl creates"),
    KeySpec("networkN_mac", _mac, "fixed MAC address; generated at create"),
    KeySpec("networkN_span", boolean, "attach the tap as a span (monitor) port", "no"),
    KeySpec("networkN_mtu", _mtu, "MTU of the NIC (default: the switch's)", hivectl=True),
    KeySpec("networkN_slot", pci_slot, "pinned PCI slot (S, S:F or B:S:F) so adding disks never moves the NIC",
            hivectl=True),
)
