"""PCI slot allocation: vm-bhyve's layout, exactly, plus pinned slots that never move.

Guests identify hardware by PCI address: FreeBSD names a virtio NIC ``vtnet0`` by probe order, Linux
calls it ``enp0s5`` after its slot, Windows binds its network settings to the slot. An existing vm-bhyve
guest must therefore see the same addresses under hivectl, so the default layout follows vm-bhyve's
``lib/vm-run`` step by step (``vm::bhyve_device_*``). Its one weakness is that positions are counted, not
chosen: adding a disk moves every NIC (churchers#171, #478). ``diskN_slot`` / ``networkN_slot`` pin a
device to an address; the counting then simply steps over every slot that holds a pinned device.

This module knows the bus and the ways of placing a device, not the devices: each device kind
(hivectl/drivers/bhyve/devices/) picks a rule (``Fixed``, ``OwnSlot``, ``Functions``, ``Grouped``) and
``allocate`` runs the rules in the registry's order, which is vm-bhyve's.

Rules of the PCI bus, as bhyve implements it (bhyve(8), usr.sbin/bhyve/pci_emul.c):

- An address is bus 0..255, slot 0..31, function 0..7. One ``-s`` per address; bhyve refuses a second
  device on an occupied address.
- A slot with several functions is one multi-function device to the guest. Guests only scan functions
  1-7 of a slot whose function 0 exists, so a slot must never have a hole at function 0.
- Bus 0 slot 0 is the host bridge and bus 0 slot 31 the LPC bridge (Windows insists on 31); both are kept
  even when ``hostbridge=none``, so a pin there is refused.
- Devices on bus 1 and up need ``-Y`` (no MPTable), because bhyve only describes bus 0 in the MPTable.
- Counting wraps to the next bus when the slot reaches 31 on bus 0 (31 is the LPC) or 32 on other buses.

Where hivectl deliberately differs (only in cases where vm-bhyve produced a broken command line):
a partial shared controller keeps its bus number (vm-bhyve drops it past bus 0), function numbers never
exceed 7, the install slot and fixed passthru slots are stepped over instead of colliding, and every
collision left is reported as an error naming the keys instead of bhyve's ``already occupied``.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.errors import ConfigError
from hivectl.records import field, record

MAX_BUS = 255
HOSTBRIDGE_SLOT = 0
LPC_SLOT = 31
FUNCTIONS = 8


@record(frozen=True, order=True)
class PciAddr:
    """A PCI address as bhyve numbers it."""

    bus: int
    slot: int
    func: int = 0

    def __str__(self) -> str:
        return f"{self.bus}:{self.slot}:{self.func}"


def parse_pin(source: str | Path | None, key: str, value: str) -> PciAddr:
    """A ``diskN_slot``/``networkN_slot`` value: ``S``, ``S:F`` or ``B:S:F`` (bus 0 unless given)."""
    parts = value.split(":")
    limits = {1: [(0, 31)], 2: [(0, 31), (0, 7)], 3: [(0, MAX_BUS), (0, 31), (0, 7)]}.get(len(parts), [])
    if not limits or not all(p.isascii() and p.isdigit() and lo <= int(p) <= hi
                             for p, (lo, hi) in zip(parts, limits, strict=True)):
        raise ConfigError(source, key, value, "expected a PCI slot as S, S:F or B:S:F (slot 0-31, function 0-7)")
    numbers = [int(p) for p in parts]
    if len(numbers) == 1:
        return PciAddr(0, numbers[0], 0)
    if len(numbers) == 2:
        return PciAddr(0, numbers[0], numbers[1])
    return PciAddr(numbers[0], numbers[1], numbers[2])


@record(frozen=True)
class Placement:
    """One ``-s`` position: what goes there (``kind`` and the config keys behind it) and how it is spelled.

    ``spelling`` is the slot text of the ``-s`` argument. vm-bhyve writes ``0`` for the host bridge, ``31``
    for the LPC, ``S:0`` for install media and ``B:S:F`` for the rest; keeping that makes ``ps`` output
    and logs look the same to administrators who grep them. ``pin_key`` is the ``<key>_slot`` that put the
    device there (errors name it); ``label`` names a device that stands for several keys.
    """

    kind: str  # the placement kind of a device module in hivectl/drivers/bhyve/devices/
    members: tuple[str, ...]
    addr: PciAddr
    spelling: str
    pinned: bool = False
    pin_key: str = ""
    label: str = ""

    @property
    def description(self) -> str:
        """How an error names this device: its pin key, its label, or its config key."""
        return self.pin_key or self.label or self.members[0]


@record
class Layout:
    placements: list[Placement]

    @property
    def upper_bus(self) -> bool:
        """True when a device sits on bus 1 or higher (bhyve then needs ``-Y``)."""
        return any(p.addr.bus >= 1 for p in self.placements)

    def of(self, member: str) -> Placement:
        """The placement holding config key group ``member`` (``disk0``, ``network1``, ``fbuf``...)."""
        for placement in self.placements:
            if member in placement.members:
                return placement
        raise KeyError(member)


class Cursor:
    """vm-bhyve's ``_bus``/``_slot``/``_func`` counter, stepping over reserved slots when it opens one."""

    def __init__(self, start_slot: int, reserved: set[tuple[int, int]], source: str | Path | None) -> None:
        self.bus = 0
        self.slot = start_slot
        self.func = 0
        self.reserved = reserved
        self.source = source

    @property
    def maxslots(self) -> int:
        return LPC_SLOT if self.bus == 0 else 32

    def wrap(self) -> None:
        if self.slot >= self.maxslots:
            self.slot = 0
            self.bus += 1
            if self.bus > MAX_BUS:
                raise ConfigError(self.source, "start_slot", str(self.slot), "the guest has more devices than "
                                  "fit on 256 PCI buses")

    def next_slot(self) -> None:
        self.slot += 1
        self.func = 0
        self.wrap()

    def at(self, func: int) -> PciAddr:
        """The address for a device at ``func`` of the current slot; a new slot skips reserved ones."""
        if func == 0:
            while (self.bus, self.slot) in self.reserved:
                self.slot += 1
                self.wrap()
        return PciAddr(self.bus, self.slot, func)


# -- placement rules: each device kind (hivectl/drivers/bhyve/devices/) picks one ----------------------


class Rule:
    """How one device kind's devices are placed; the allocator runs the rules in the registry's order."""

    def pins(self) -> list[tuple[str, PciAddr]]:
        """``(<key>_slot, address)`` of every user pin, checked before anything is placed."""
        return []

    def reserved(self) -> set[tuple[int, int]]:
        """(bus, slot) pairs counted placements must step over."""
        return set()

    def place(self, cur: Cursor, out: list[Placement]) -> None:
        raise NotImplementedError


@record(frozen=True)
class Fixed(Rule):
    """A device at a set address that the counter never reaches (host bridge, LPC, install medium)."""

    kind: str
    addr: PciAddr
    spelling: str
    reserve: bool = False  # step counted devices over this slot (the install slot, a moved LPC)

    def reserved(self) -> set[tuple[int, int]]:
        return {(self.addr.bus, self.addr.slot)} if self.reserve else set()

    def place(self, cur: Cursor, out: list[Placement]) -> None:
        out.append(Placement(self.kind, (self.kind,), self.addr, self.spelling))


@record(frozen=True)
class OwnSlot(Rule):
    """One device on a new slot at function 0 (virtio-rnd, fbuf, xhci, hda, virtio-console), or at its pin.

    ``pin`` comes from the device's ``<key>_slot`` (``pin_key``); a pinned device is not counted, so the
    devices after it keep the slots they had without it (what ``hivectl import`` needs to keep a hand-made
    guest's addresses).
    """

    kind: str
    pin: PciAddr | None = None
    pin_key: str = ""

    def pins(self) -> list[tuple[str, PciAddr]]:
        return [(self.pin_key, self.pin)] if self.pin is not None else []

    def reserved(self) -> set[tuple[int, int]]:
        return {(self.pin.bus, self.pin.slot)} if self.pin is not None else set()

    def place(self, cur: Cursor, out: list[Placement]) -> None:
        if self.pin is not None:
            out.append(Placement(self.kind, (self.kind,), self.pin, str(self.pin), pinned=True, pin_key=self.pin_key))
            return
        addr = cur.at(0)
        out.append(Placement(self.kind, (self.kind,), addr, str(addr)))
        cur.next_slot()


def own_slot(kind: str, source: str | Path | None, pin_key: str, value: str) -> OwnSlot:
    """The ``OwnSlot`` rule of a device kind whose pin is ``pin_key`` (value empty: counted as before)."""
    return OwnSlot(kind, parse_pin(source, pin_key, value) if value else None, pin_key)


@record(frozen=True)
class Item:
    """One numbered device (``diskN``, ``networkN``): its key, its pin, whether it may share a controller."""

    key: str
    pin: PciAddr | None = None
    shared: bool = False


@record(frozen=True)
class Functions(Rule):
    """Devices as functions 0-7 of a slot, then the next slot (vm-bhyve's disks and NICs).

    ``slot_each``: every device gets a slot of its own instead (disks under UEFI, whose firmware boots
    from function 0 only). ``share_limit`` > 1: items marked ``shared`` wait until that many fill one
    ``share_kind`` controller, which is placed when it fills up or after the last item.
    """

    kind: str
    items: tuple[Item, ...]
    slot_each: bool = False
    share_kind: str = ""
    share_limit: int = 1
    share_label: str = ""  # a shared controller of several keys is named "<label> disk0, disk1"

    def pins(self) -> list[tuple[str, PciAddr]]:
        """One pin per address: shared items pinned to one address are one controller, not a clash."""
        found: list[tuple[str, PciAddr]] = []
        controllers: set[PciAddr] = set()
        for item in self.items:
            if item.pin is None:
                continue
            if self._joins(item):
                if item.pin in controllers:
                    continue
                controllers.add(item.pin)
            found.append((_pin_key(item.key), item.pin))
        return found

    def reserved(self) -> set[tuple[int, int]]:
        return {(item.pin.bus, item.pin.slot) for item in self.items if item.pin is not None}

    def _joins(self, item: Item) -> bool:
        """A shared item pinned where another shared item of this rule is pinned: they share a controller."""
        return bool(self.share_kind) and item.shared and item.pin is not None and \
            sum(1 for other in self.items if other.shared and other.pin == item.pin) > 1

    def _shared(self, members: list[str], addr: PciAddr) -> Placement:
        label = self.share_label + ", ".join(members) if len(members) > 1 else ""
        return Placement(self.share_kind, tuple(members), addr, str(addr), label=label)

    def place(self, cur: Cursor, out: list[Placement]) -> None:
        pending: list[str] = []  # items waiting for their shared controller
        counted = 0
        for item in self.items:
            if item.pin is not None and self._joins(item):
                members = tuple(other.key for other in self.items if other.shared and other.pin == item.pin)
                if members[0] == item.key:  # the controller goes where its first disk is listed
                    out.append(Placement(self.share_kind, members, item.pin, str(item.pin), pinned=True,
                                         pin_key=_pin_key(item.key),
                                         label=self.share_label + ", ".join(members)))
                continue
            if item.pin is not None:
                out.append(Placement(self.kind, (item.key,), item.pin, str(item.pin), pinned=True,
                                     pin_key=_pin_key(item.key)))
                continue
            counted += 1
            if cur.func >= FUNCTIONS:
                cur.next_slot()
            cur.wrap()
            added = False
            if self.share_limit > 1 and item.shared:
                pending.append(item.key)
                if len(pending) >= self.share_limit:
                    out.append(self._shared(pending, cur.at(cur.func)))
                    pending = []
                    added = True
            else:
                addr = cur.at(cur.func)
                out.append(Placement(self.kind, (item.key,), addr, str(addr)))
                added = True
            if added:
                if self.slot_each:
                    cur.slot += 1
                else:
                    cur.func += 1
            cur.wrap()
        if pending:
            if cur.func >= FUNCTIONS:
                cur.next_slot()
            out.append(self._shared(pending, cur.at(cur.func)))
            if self.slot_each:
                cur.slot += 1
        if counted and not self.slot_each:
            cur.slot += 1
            cur.func = 0
        cur.wrap()


@record(frozen=True)
class GroupItem:
    """A device that shares a guest slot with its neighbours while ``group`` stays the same.

    ``fixed`` is a guest ``(slot, func)`` chosen in the config (passthru's ``=S:F``).
    """

    key: str
    group: str
    fixed: tuple[int, int] | None = None


@record(frozen=True)
class Grouped(Rule):
    """vm-bhyve's passthru rule: one guest slot per run of equal groups (the host bus), or a fixed slot."""

    kind: str
    items: tuple[GroupItem, ...]

    def reserved(self) -> set[tuple[int, int]]:
        return {(0, item.fixed[0]) for item in self.items if item.fixed is not None}

    def place(self, cur: Cursor, out: list[Placement]) -> None:
        func = 0
        last: str | None = None
        for item in self.items:
            if item.fixed is not None:
                addr = PciAddr(cur.bus, item.fixed[0], item.fixed[1])
                out.append(Placement(self.kind, (item.key,), addr, str(addr), pinned=True))
                continue
            if last is not None and (last != item.group or func >= FUNCTIONS):
                cur.slot += 1
                func = 0
            cur.wrap()
            addr = cur.at(func)
            out.append(Placement(self.kind, (item.key,), addr, str(addr)))
            last = item.group
            func += 1
        if self.items:
            cur.slot += 1
        cur.wrap()


@record
class LayoutRequest:
    """Everything that decides the layout: the counting settings and one rule per device kind, in order.

    Built from a guest config by ``devices.layout_request``, which asks every registered device kind.
    """

    rules: list[Rule] = field(default_factory=list)
    start_slot: int = 4
    install_slot: int = 3
    source: str | Path | None = None  # the config file, for error messages


def _pin_key(member: str) -> str:
    return f"{member}_slot"


def _check_pins(req: LayoutRequest) -> None:
    """Refuse pins on reserved slots and two pins on one address."""
    seen: dict[PciAddr, str] = {}
    for rule in req.rules:
        for key, addr in rule.pins():
            if addr.bus == 0 and addr.slot in (HOSTBRIDGE_SLOT, LPC_SLOT):
                what = "the host bridge" if addr.slot == HOSTBRIDGE_SLOT else "the LPC bridge"
                raise ConfigError(req.source, key, _pin_text(addr), f"bus 0 slot {addr.slot} is reserved for {what}")
            if addr.bus == 0 and addr.slot == req.install_slot:
                raise ConfigError(req.source, key, _pin_text(addr),
                                  f"slot {addr.slot} is the install_slot (where install media go); pin another "
                                  "slot or change install_slot")
            if addr in seen:
                raise ConfigError(req.source, key, _pin_text(addr),
                                  f"{seen[addr]} pins another device to the same address {addr}")
            seen[addr] = key


def _pin_text(addr: PciAddr) -> str:
    return str(addr) if addr.bus else f"{addr.slot}:{addr.func}"


def allocate(req: LayoutRequest) -> Layout:
    """Place every device; raise ``ConfigError`` naming the keys when two devices would share an address."""
    _check_pins(req)
    reserved = {(0, HOSTBRIDGE_SLOT), (0, LPC_SLOT)}
    for rule in req.rules:
        reserved |= rule.reserved()
    out: list[Placement] = []
    cur = Cursor(req.start_slot, reserved, req.source)
    for rule in req.rules:
        rule.place(cur, out)
    _check_collisions(req, out)
    return Layout(out)


def _check_collisions(req: LayoutRequest, out: list[Placement]) -> None:
    taken: dict[PciAddr, Placement] = {}
    for placement in out:
        other = taken.get(placement.addr)
        if other is not None:
            pinned = [p for p in (other, placement) if p.pinned]
            key = pinned[0].description if pinned else placement.description
            raise ConfigError(req.source, key, str(placement.addr),
                              f"{other.description} and {placement.description} would share PCI address "
                              f"{placement.addr}")
        taken[placement.addr] = placement
    # A pinned device at function F>0 needs something at function 0 of its slot, or guests never see it.
    for placement in out:
        if placement.pin_key and placement.addr.func:
            head = PciAddr(placement.addr.bus, placement.addr.slot, 0)
            if head not in taken:
                raise ConfigError(req.source, placement.pin_key, _pin_text(placement.addr),
                                  f"nothing is at function 0 of slot {placement.addr.bus}:{placement.addr.slot}; "
                                  "guests ignore functions 1-7 of a slot without function 0")
