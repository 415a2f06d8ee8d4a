"""PCI addresses on q35's root bus, given explicitly so that a guest's devices never move.

Guests name NICs and disks after their PCI slot (``enp0s5``), so an address must not depend on which
other devices happen to exist. As for bhyve, devices are placed in vm-bhyve's order (disks from
``start_slot``, then NICs, the RNG, passthrough, graphics, USB, sound, virtio consoles), and a
``diskN_slot``/``networkN_slot`` key pins a device so that adding a disk never renumbers a NIC.

Differences from the bhyve layout, on purpose: every automatically placed device gets a slot of its own
(function 0), which is what vm-bhyve does for UEFI guests; only pinned ``S:F`` addresses share a slot,
and then the function-0 device is marked ``multifunction=on`` as QEMU requires. q35 has a single root
bus, so a pinned bus other than 0 is refused. Slot 0 (host bridge) and 31 (the ICH9 LPC/SATA/SMBus
functions) belong to the machine.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers.qemu.options import Props, join
from hivectl.errors import ConfigError
from hivectl.records import field, record

FIRST_FREE = 1
LAST_FREE = 30  # slot 31 holds q35's built-in ICH9 functions


@record
class PciDevice:
    """One device on the root bus plus the arguments that belong with it.

    ``before`` holds backend definitions (``-drive``, ``-netdev``, ``-object``) and ``after`` the devices
    that sit on this device's own bus (an ``ide-hd`` on an ``ich9-ahci``); both are emitted next to the
    device so that one config key maps to one contiguous run of arguments.
    """

    owner: str  # what the device is for, as in the config ("disk0", "network1", "graphics")
    driver: str
    props: Props = field(default_factory=list)
    pin: str = ""  # the pinned address as written in the config (S, S:F or B:S:F)
    pin_key: str = ""
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    slot: int = -1
    function: int = 0
    multifunction: bool = False

    def argv(self) -> list[str]:
        props = [*self.props, ("addr", f"{self.slot:#x}.{self.function:x}")]
        if self.multifunction:
            props.append(("multifunction", "on"))
        return [*self.before, "-device", join(self.driver, props), *self.after]


def _parse_pin(source: Path, device: PciDevice) -> tuple[int, int]:
    parts = device.pin.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        raise ConfigError(source, device.pin_key, device.pin, "expected a PCI slot as S, S:F or B:S:F")
    numbers = [int(p) for p in parts]
    if len(numbers) == 3:
        if numbers[0] != 0:
            raise ConfigError(source, device.pin_key, device.pin,
                              "the qemu driver has only PCI bus 0 (q35's root bus); pin S or S:F")
        numbers = numbers[1:]
    slot, function = [*numbers, 0][:2]
    if not FIRST_FREE <= slot <= LAST_FREE or not 0 <= function <= 7:
        raise ConfigError(source, device.pin_key, device.pin,
                          f"expected slot {FIRST_FREE}-{LAST_FREE} and function 0-7 (slots 0 and 31 belong to "
                          "the machine)")
    return slot, function


def place(devices: list[PciDevice], first_slot: int, source: Path) -> list[ConfigError]:
    """Give every device an address: pinned ones where asked, the rest in order from ``first_slot``."""
    problems: list[ConfigError] = []
    taken: dict[tuple[int, int], PciDevice] = {}
    for device in devices:
        if not device.pin:
            continue
        try:
            address = _parse_pin(source, device)
        except ConfigError as error:
            problems.append(error)
            continue
        if address in taken:
            other = taken[address]
            problems.append(ConfigError(source, device.pin_key, device.pin,
                                        f"PCI address already used by {other.owner} ({other.pin_key})"))
            continue
        taken[address] = device
        device.slot, device.function = address
    used_slots = {slot for slot, _ in taken}
    slot = first_slot
    for device in devices:
        if device.pin:
            continue
        while slot in used_slots:
            slot += 1
        if slot > LAST_FREE:
            problems.append(ConfigError(source, "start_slot", str(first_slot),
                                        f"no free PCI slot left for {device.owner} (slots {first_slot}-{LAST_FREE} "
                                        "are full; pin devices or lower start_slot)"))
            break
        device.slot, device.function = slot, 0
        used_slots.add(slot)
        taken[(slot, 0)] = device
    by_slot: dict[int, list[PciDevice]] = {}
    for (slot_no, _), device in taken.items():
        by_slot.setdefault(slot_no, []).append(device)
    for slot_no, members in by_slot.items():
        head = taken.get((slot_no, 0))
        if head is None:  # guests do not look past a missing function 0
            first = min(members, key=lambda d: d.function)
            problems.append(ConfigError(source, first.pin_key, first.pin,
                                        f"slot {slot_no} has functions but no function 0; pin one device to "
                                        f"{slot_no}:0"))
        elif len(members) > 1:
            head.multifunction = True
    return problems
