"""PCI slot allocation: vm-bhyve's layout, exactly, plus pinned slots that never move.

Guests identify hardware by PCI address: FreeBSD names a virtio NIC ``vtnet0`` by probe order, Linux
calls it ``enp0s5`` after its slot, Windows binds its network settings to the slot. An existing vm-bhyve
guest must therefore see the same addresses under hivectl, so the default layout below follows vm-bhyve's
``lib/vm-run`` step by step (``vm::bhyve_device_*``). Its one weakness is that positions are counted, not
chosen: adding a disk moves every NIC (churchers#171, #478). ``diskN_slot`` / ``networkN_slot`` pin a
device to an address; the counting then simply steps over every slot that holds a pinned device.

Rules of the PCI bus, as bhyve implements it (bhyve(8), usr.sbin/bhyve/pci_emul.c):

- An address is bus 0..255, slot 0..31, function 0..7. One ``-s`` per address; bhyve refuses a second
  device on an occupied address.
- A slot with several functions is one multi-function device to the guest. Guests only scan functions
  1-7 of a slot whose function 0 exists, so a slot must never have a hole at function 0.
- Bus 0 slot 0 is the host bridge and bus 0 slot 31 the LPC bridge (Windows insists on 31); both are kept
  even when ``hostbridge=none``, so a pin there is refused.
- Devices on bus 1 and up need ``-Y`` (no MPTable), because bhyve only describes bus 0 in the MPTable.

vm-bhyve's counting rules, which the default layout reproduces:

- Disks start at ``start_slot`` (4). Without UEFI, disks are functions 0-7 of one slot, then the next
  slot; with UEFI every disk gets its own slot (the firmware only boots from function 0).
- AHCI: one ``ahci-hd``/``ahci-cd`` device is one controller with one port. With ``ahci_device_limit`` N
  (2-32), up to N ahci disks share one ``ahci,hd:…,cd:…`` controller (a controller has 32 ports), which
  saves slots for guests with many SATA disks (Windows). A controller is placed when it fills up, or after
  the last disk for a partial one.
- virtio-blk/nvme/virtio-scsi/virtio-9p: one device per address (virtio has no ports).
- NICs: functions 0-7 of one slot after the disks, then the next slot.
- Then, each on a new slot at function 0: virtio-rnd, passthru, fbuf, xhci, hda, virtio-console.
- Passthru ``B/S/F=S2:F2`` goes exactly to slot S2 function F2 (on the bus the counter is on, as in
  vm-bhyve). Other passthru devices share one guest slot while their host *bus* (the first number, which
  is what vm-bhyve's code compares) stays the same; a new host bus opens a new guest slot.
- The install medium (and ``nulliso_fix``'s empty CD) sits at ``install_slot`` (3), function 0.
- Counting wraps to the next bus when the slot reaches 31 on bus 0 (31 is the LPC) or 32 on other buses.

Where hivectl deliberately differs (only in cases where vm-bhyve produced a broken command line):
a partial AHCI controller keeps its bus number (vm-bhyve drops it past bus 0), function numbers never
exceed 7, the install slot and fixed passthru slots are stepped over instead of colliding, and every
collision left is reported as an error naming the keys instead of bhyve's ``already occupied``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hivectl.errors import ConfigError

MAX_BUS = 255
HOSTBRIDGE_SLOT = 0
LPC_SLOT = 31
FUNCTIONS = 8


@dataclass(frozen=True, order=True)
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


@dataclass(frozen=True)
class DiskReq:
    """One ``diskN`` as the allocator sees it: its key, whether it may join a shared AHCI controller."""

    key: str
    ahci: bool = False
    pin: PciAddr | None = None


@dataclass(frozen=True)
class NicReq:
    key: str
    pin: PciAddr | None = None


@dataclass(frozen=True)
class PassthruReq:
    """``passthruN``: the host bus (grouping rule) and the fixed guest ``(slot, func)`` if ``=S:F`` was given."""

    key: str
    host_bus: str
    fixed: tuple[int, int] | None = None


@dataclass
class LayoutRequest:
    """Everything that decides the layout; built from a guest config by ``devices.layout_request``."""

    uefi: bool
    start_slot: int = 4
    install_slot: int = 3
    ahci_limit: int = 1
    hostbridge: bool = True
    disks: list[DiskReq] = field(default_factory=list)
    nics: list[NicReq] = field(default_factory=list)
    rnd: bool = False
    passthru: list[PassthruReq] = field(default_factory=list)
    fbuf: bool = False
    xhci: bool = False
    hda: bool = False
    console: bool = False
    install: bool = False
    source: str | Path | None = None  # the config file, for error messages


@dataclass(frozen=True)
class Placement:
    """One ``-s`` position: what goes there (``kind`` and the config keys behind it) and how it is spelled.

    ``spelling`` is the slot text of the ``-s`` argument. vm-bhyve writes ``0`` for the host bridge, ``31``
    for the LPC, ``S:0`` for install media and ``B:S:F`` for the rest; keeping that makes ``ps`` output
    and logs look the same to administrators who grep them.
    """

    kind: str  # hostbridge lpc disk ahci nic rnd passthru fbuf xhci hda console install
    members: tuple[str, ...]
    addr: PciAddr
    spelling: str
    pinned: bool = False


@dataclass
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


class _Cursor:
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


def _pin_key(member: str) -> str:
    return f"{member}_slot"


def _check_pins(req: LayoutRequest) -> dict[str, PciAddr]:
    """Pins by key, after refusing pins on reserved slots and two pins on one address."""
    pins: dict[str, PciAddr] = {}
    items: list[DiskReq | NicReq] = [*req.disks, *req.nics]
    for item in items:
        if item.pin is not None:
            pins[item.key] = item.pin
    seen: dict[PciAddr, str] = {}
    for member, addr in pins.items():
        key = _pin_key(member)
        if addr.bus == 0 and addr.slot in (HOSTBRIDGE_SLOT, LPC_SLOT):
            what = "the host bridge" if addr.slot == HOSTBRIDGE_SLOT else "the LPC bridge"
            raise ConfigError(req.source, key, _pin_text(addr), f"bus 0 slot {addr.slot} is reserved for {what}")
        if addr.bus == 0 and addr.slot == req.install_slot:
            raise ConfigError(req.source, key, _pin_text(addr),
                              f"slot {addr.slot} is the install_slot (where install media go); pin another "
                              "slot or change install_slot")
        if addr in seen:
            raise ConfigError(req.source, key, _pin_text(addr),
                              f"{_pin_key(seen[addr])} pins another device to the same address {addr}")
        seen[addr] = member
    return pins


def _pin_text(addr: PciAddr) -> str:
    return str(addr) if addr.bus else f"{addr.slot}:{addr.func}"


def allocate(req: LayoutRequest) -> Layout:
    """Place every device; raise ``ConfigError`` naming the keys when two devices would share an address."""
    pins = _check_pins(req)
    reserved = {(addr.bus, addr.slot) for addr in pins.values()}
    reserved |= {(0, HOSTBRIDGE_SLOT), (0, LPC_SLOT)}
    for item in req.passthru:
        if item.fixed is not None:
            reserved.add((0, item.fixed[0]))
    if req.install:
        reserved.add((0, req.install_slot))

    out: list[Placement] = []
    if req.hostbridge:
        out.append(Placement("hostbridge", ("hostbridge",), PciAddr(0, HOSTBRIDGE_SLOT), "0"))
    out.append(Placement("lpc", ("lpc",), PciAddr(0, LPC_SLOT), "31"))

    cur = _Cursor(req.start_slot, reserved, req.source)
    _disks(req, cur, out)
    _nics(req, cur, out)
    for kind, wanted in (("rnd", req.rnd),):
        if wanted:
            addr = cur.at(0)
            out.append(Placement(kind, (kind,), addr, str(addr)))
            cur.next_slot()
    _passthru(req, cur, out)
    for kind, wanted in (("fbuf", req.fbuf), ("xhci", req.xhci), ("hda", req.hda), ("console", req.console)):
        if wanted:
            addr = cur.at(0)
            out.append(Placement(kind, (kind,), addr, str(addr)))
            cur.next_slot()
    if req.install:
        out.append(Placement("install", ("install",), PciAddr(0, req.install_slot), f"{req.install_slot}:0"))
    _check_collisions(req, out)
    return Layout(out)


def _disks(req: LayoutRequest, cur: _Cursor, out: list[Placement]) -> None:
    pending: list[str] = []  # ahci disks waiting for their shared controller
    counted = 0
    for disk in req.disks:
        if disk.pin is not None:
            out.append(Placement("disk", (disk.key,), disk.pin, str(disk.pin), pinned=True))
            continue
        counted += 1
        if cur.func >= FUNCTIONS:
            cur.next_slot()
        cur.wrap()
        added = False
        if req.ahci_limit > 1 and disk.ahci:
            pending.append(disk.key)
            if len(pending) >= req.ahci_limit:
                addr = cur.at(cur.func)
                out.append(Placement("ahci", tuple(pending), addr, str(addr)))
                pending = []
                added = True
        else:
            addr = cur.at(cur.func)
            out.append(Placement("disk", (disk.key,), addr, str(addr)))
            added = True
        if added:
            if req.uefi:
                cur.slot += 1
            else:
                cur.func += 1
        cur.wrap()
    if pending:
        if cur.func >= FUNCTIONS:
            cur.next_slot()
        addr = cur.at(cur.func)
        out.append(Placement("ahci", tuple(pending), addr, str(addr)))
        if req.uefi:
            cur.slot += 1
    if counted and not req.uefi:
        cur.slot += 1
        cur.func = 0
    cur.wrap()


def _nics(req: LayoutRequest, cur: _Cursor, out: list[Placement]) -> None:
    counted = 0
    for nic in req.nics:
        if nic.pin is not None:
            out.append(Placement("nic", (nic.key,), nic.pin, str(nic.pin), pinned=True))
            continue
        counted += 1
        if cur.func >= FUNCTIONS:
            cur.next_slot()
        cur.wrap()
        addr = cur.at(cur.func)
        out.append(Placement("nic", (nic.key,), addr, str(addr)))
        cur.func += 1
    if counted:
        cur.slot += 1
        cur.func = 0
    cur.wrap()


def _passthru(req: LayoutRequest, cur: _Cursor, out: list[Placement]) -> None:
    func = 0
    last_bus: str | None = None
    for item in req.passthru:
        if item.fixed is not None:
            addr = PciAddr(cur.bus, item.fixed[0], item.fixed[1])
            out.append(Placement("passthru", (item.key,), addr, str(addr), pinned=True))
            continue
        if last_bus is not None and (last_bus != item.host_bus or func >= FUNCTIONS):
            cur.slot += 1
            func = 0
        cur.wrap()
        addr = cur.at(func)
        out.append(Placement("passthru", (item.key,), addr, str(addr)))
        last_bus = item.host_bus
        func += 1
    if req.passthru:
        cur.slot += 1
    cur.wrap()


def _describe(placement: Placement) -> str:
    member = placement.members[0]
    if placement.kind in ("disk", "nic") and placement.pinned:
        return _pin_key(member)
    if placement.kind == "ahci" and len(placement.members) > 1:
        return "the shared AHCI controller of " + ", ".join(placement.members)
    return member


def _check_collisions(req: LayoutRequest, out: list[Placement]) -> None:
    taken: dict[PciAddr, Placement] = {}
    for placement in out:
        other = taken.get(placement.addr)
        if other is not None:
            pinned = [p for p in (other, placement) if p.pinned]
            key = _describe(pinned[0]) if pinned else _describe(placement)
            raise ConfigError(req.source, key, str(placement.addr),
                              f"{_describe(other)} and {_describe(placement)} would share PCI address "
                              f"{placement.addr}")
        taken[placement.addr] = placement
    # A pinned device at function F>0 needs something at function 0 of its slot, or guests never see it.
    for placement in out:
        if placement.pinned and placement.kind in ("disk", "nic") and placement.addr.func:
            head = PciAddr(placement.addr.bus, placement.addr.slot, 0)
            if head not in taken:
                raise ConfigError(req.source, _pin_key(placement.members[0]), _pin_text(placement.addr),
                                  f"nothing is at function 0 of slot {placement.addr.bus}:{placement.addr.slot}; "
                                  "guests ignore functions 1-7 of a slot without function 0")
