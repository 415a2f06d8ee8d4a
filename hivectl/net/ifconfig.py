"""What FreeBSD's interfaces look like right now, read with ``ifconfig`` (read-only, cached per plan).

Planning must not change the host, but it must know what exists: which bridge carries a switch (found by
its ``viid-…@`` group, as vm-bhyve finds it), which ``tapN`` names are free, a bridge's MTU and members.
``FreeBSDView`` asks once (``ifconfig -a``) and answers every later question from that, and it also
remembers the names a plan is about to create so that two taps planned together never get the same
``tapN``.

The parser reads the output format of FreeBSD 13-15 ``ifconfig`` (ifconfig(8); sbin/ifconfig/ifbridge.c): a first line
``name: flags=<hex><FLAGS> metric 0 mtu N`` followed by tab-indented detail lines.
"""

from __future__ import annotations

import ipaddress
import os

from hivectl.host.base import Host
from hivectl.patterns import Pattern
from hivectl.records import field, record

_FIRST = Pattern(r"^(\S+): flags=(?:[0-9a-fA-F]+)<([^>]*)>.*?\bmtu (\d+)")
_MEMBER = Pattern(r"^member: (\S+)(?: flags=[0-9a-fA-F]+<([^>]*)>)?")


@record
class IfInfo:
    """One interface as ``ifconfig IF`` shows it."""

    name: str
    flags: frozenset[str] = frozenset()
    mtu: int = 1500
    description: str = ""
    groups: tuple[str, ...] = ()
    ether: str = ""
    inet: list[ipaddress.IPv4Interface] = field(default_factory=list)
    inet6: list[ipaddress.IPv6Interface] = field(default_factory=list)
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # bridge member -> its flags

    @property
    def up(self) -> bool:
        return "UP" in self.flags

    @property
    def is_bridge(self) -> bool:
        return "bridge" in self.groups

    def routable(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """Addresses that matter for reaching the host (IPv6 link-local ones do not)."""
        return [*self.inet, *[a for a in self.inet6 if not a.ip.is_link_local]]


def _inet(words: list[str]) -> ipaddress.IPv4Interface | None:
    """``inet 10.0.0.1 netmask 0xffffff00 broadcast …`` or ``inet 10.0.0.1/24 …``."""
    if len(words) < 2:
        return None
    text = words[1]
    try:
        if "/" in text:
            return ipaddress.IPv4Interface(text)
        if "netmask" in words:
            mask = words[words.index("netmask") + 1]
            prefix = bin(int(mask, 16)).count("1") if mask.startswith("0x") else \
                ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
            return ipaddress.IPv4Interface(f"{text}/{prefix}")
        return ipaddress.IPv4Interface(f"{text}/32")
    except (ValueError, IndexError):
        return None


def _inet6(words: list[str]) -> ipaddress.IPv6Interface | None:
    """``inet6 fe80::1%lo0 prefixlen 64 scopeid 0x2`` or ``inet6 fd00::1/64``."""
    if len(words) < 2:
        return None
    text = words[1].split("%", 1)[0]
    try:
        if "/" in text:
            return ipaddress.IPv6Interface(text)
        prefix = words[words.index("prefixlen") + 1] if "prefixlen" in words else "128"
        return ipaddress.IPv6Interface(f"{text}/{prefix}")
    except (ValueError, IndexError):
        return None


def parse(text: str) -> list[IfInfo]:
    """Every interface block in ``ifconfig`` output (one for ``ifconfig IF``, all for ``ifconfig -a``)."""
    result: list[IfInfo] = []
    current: IfInfo | None = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if not raw[0].isspace():
            match = _FIRST.match(raw)
            if match is None:
                current = None
                continue
            flags = frozenset(f for f in match.group(2).split(",") if f)
            current = IfInfo(match.group(1), flags, int(match.group(3)))
            result.append(current)
            continue
        if current is None:
            continue
        line = raw.strip()
        words = line.split()
        head = words[0]
        if head == "description:":
            current.description = line[len("description:"):].strip()
        elif head == "groups:":
            current.groups = tuple(words[1:])
        elif head == "ether":
            current.ether = words[1] if len(words) > 1 else ""
        elif head == "inet":
            v4 = _inet(words)
            if v4 is not None:
                current.inet.append(v4)
        elif head == "inet6":
            v6 = _inet6(words)
            if v6 is not None:
                current.inet6.append(v6)
        elif head == "member:":
            member = _MEMBER.match(line)
            if member:
                current.members[member.group(1)] = frozenset((member.group(2) or "").split(",")) - {""}
    return result


class FreeBSDView:
    """Cached, read-only answers about the host's interfaces, plus the names a plan reserves.

    One ``ifconfig -a`` answers every question a plan has (which interfaces exist, group members, a
    bridge's members and MTU, a port's addresses): one process per command instead of one per interface.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self._all: dict[str, IfInfo] | None = None
        self.reserved: set[str] = set()

    def _load(self) -> dict[str, IfInfo]:
        if self._all is None:
            self._all = {block.name: block for block in parse(self.host.run(["ifconfig", "-a"]).stdout)}
        return self._all

    def all(self) -> list[IfInfo]:
        return list(self._load().values())

    def names(self) -> list[str]:
        """Every interface on the host (what ``ifconfig -l`` prints)."""
        return list(self._load())

    def exists(self, name: str) -> bool:
        return name in self._load()

    def group(self, group: str) -> list[str]:
        """The members of an interface group (what ``ifconfig -g GROUP`` prints)."""
        return [info.name for info in self._load().values() if group in info.groups]

    def info(self, name: str) -> IfInfo | None:
        """One interface (what ``ifconfig IF`` prints), or None when it does not exist."""
        return self._load().get(name)

    def units_in_use(self, cloner: str) -> set[str]:
        """``/dev/<cloner>N`` nodes: a tap renamed with ``name`` keeps its unit and its ``/dev/tapN`` node,
        so the unit is taken even though ``ifconfig -l`` no longer shows ``tapN``."""
        try:
            entries = os.listdir(self.host.devpath("/dev/"))
        except OSError:
            return set()
        return {e for e in entries if e.startswith(cloner) and e[len(cloner):].isdigit()}

    def free(self, prefix: str) -> str:
        """The lowest ``<prefix>N`` that is neither in use nor reserved by this plan; reserves it."""
        taken = set(self.names()) | self.reserved | self.units_in_use(prefix)
        number = 0
        while f"{prefix}{number}" in taken:
            number += 1
        name = f"{prefix}{number}"
        self.reserved.add(name)
        return name

    def reserve(self, name: str) -> None:
        self.reserved.add(name)
