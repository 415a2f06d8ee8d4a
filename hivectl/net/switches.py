"""Virtual switches as ``.config/system.conf`` describes them (vm-bhyve's ``lib/vm-switch``), read and validated.

The file stays an ``RcFile`` (comments, order and unknown keys survive every edit); ``Switch`` is a typed,
validated snapshot of one switch. Keys are vm-bhyve's: ``switch_list``, ``type_S``, ``ports_S``, ``vlan_S``,
``addr_S``, ``addr6_S``, ``mtu_S``, ``private_S``, ``bridge_S``, plus ``nat_S`` (vm-bhyve's legacy NAT flag,
which vm-bhyve ≥1.2 ignores, so a NAT switch is still an ordinary switch to it) and hivectl's own
``forward_S`` (port forwards, space-separated ``proto:hostport:guestip:guestport``).

Every value is checked where it enters: a bad value in the file is reported with the file, the key and
the value; a bad value on the command line is refused before anything is written or run.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hivectl import validate
from hivectl.errors import ConfigError, Conflict, NotFound
from hivectl.net import names
from hivectl.rcfile import RcFile
from hivectl.records import field, record

# The switch types (a package scan and a module per type) are imported when a switch's type is asked for:
# a start of a guest without NICs reads no switch (benchmarks/README.md, "start, third pass").
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.net.switchtypes.base import SwitchType

PER_SWITCH_KEYS = ("type", "ports", "vlan", "addr", "addr6", "mtu", "private", "bridge", "nat", "forward")
PROTOCOLS = ("tcp", "udp")

Source = str | Path | None


@record(frozen=True)
class Forward:
    """One inbound port forward on a NAT switch: host ``proto`` port → guest address and port."""

    proto: str
    host_port: int
    guest: ipaddress.IPv4Address
    guest_port: int

    def text(self) -> str:
        return f"{self.proto}:{self.host_port}:{self.guest}:{self.guest_port}"


@record(frozen=True)
class Switch:
    """One switch, validated."""

    name: str
    type: str = "standard"
    ports: tuple[str, ...] = ()
    vlan: int | None = None  # VLAN id (standard) or VNI (vxlan)
    addr: ipaddress.IPv4Interface | None = None
    addr6: ipaddress.IPv6Interface | None = None
    mtu: int | None = None
    private: bool = False
    bridge: str = ""  # manual switches: the existing bridge
    nat: bool = False
    forwards: tuple[Forward, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> SwitchType:
        """The switch's type (hivectl/net/switchtypes/), which knows what it means on each platform."""
        from hivectl.net.switchtypes import registry

        return registry.get(self.type)

    @property
    def has_bridge(self) -> bool:
        """Whether a bridge interface carries the switch on the host (not for vale and netgraph)."""
        return self.kind.has_bridge


# -- value checks (shared by the file reader and the command line) -------------------------------------
def check_name(source: Source, key: str, value: str) -> str:
    return validate.name(source, key, value, "switch name")


def check_type(source: Source, key: str, value: str) -> str:
    from hivectl.net.switchtypes import registry

    return validate.choice(source, key, value, registry.NAMES)  # one module per type: net/switchtypes/


def check_ifname(source: Source, key: str, value: str) -> str:
    if not names.is_ifname(value):
        raise ConfigError(source, key, value, "expected a network interface name (a letter, then letters, "
                                              "digits, '_', '.', '-'; at most 15 characters)")
    return value


def check_vlan(source: Source, key: str, value: str) -> int:
    return validate.vlan(source, key, value)


def check_mtu(source: Source, key: str, value: str) -> int:
    return validate.mtu(source, key, value)


def check_address(source: Source, key: str, value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """A bridge address in CIDR form; the network's own (or broadcast) address is refused."""
    iface = validate.cidr(source, key, value)
    net = iface.network
    if isinstance(iface, ipaddress.IPv4Interface) and net.prefixlen <= 30 and \
            iface.ip in (net.network_address, net.broadcast_address):
        raise ConfigError(source, key, value, f"{iface.ip} is the network's own or broadcast address; "
                                              f"use a host address such as {next(net.hosts())}/{net.prefixlen}")
    return iface


def check_forward(source: Source, key: str, value: str) -> Forward:
    """``proto:hostport:guestip:guestport`` (IPv4 guest address; NAT is IPv4 only)."""
    parts = value.split(":")
    if len(parts) != 4:
        raise ConfigError(source, key, value, "expected proto:hostport:guest-address:guest-port, "
                                              "like tcp:8080:10.0.5.10:80")
    proto, host_port, guest, guest_port = parts
    validate.choice(source, key, proto, PROTOCOLS)
    try:
        address = ipaddress.IPv4Address(guest)
    except ValueError:
        raise ConfigError(source, key, value, f"{guest!r} is not an IPv4 address") from None
    return Forward(proto, validate.tcp_port(source, key, host_port), address,
                   validate.tcp_port(source, key, guest_port))


@record(frozen=True)
class Member:
    """A bridge member as ``switch info`` shows it."""

    ifname: str
    kind: str  # "port" (physical or VLAN child), "guest" (a tap with a vmnet description), "other"
    guest: str = ""
    nic: int | None = None
    flags: frozenset[str] = frozenset()


def _key(name: str, kind: str) -> str:
    return f"{kind}_{name}"


class SwitchConfig:
    """The switches of one ``system.conf``: read, validate, change (in memory), render."""

    def __init__(self, rc: RcFile) -> None:
        self.rc = rc

    @classmethod
    def load(cls, path: Path) -> SwitchConfig:
        return cls(RcFile.load(path))

    @property
    def path(self) -> Path:
        return self.rc.path

    def names(self) -> list[str]:
        """``switch_list`` in order (the init order); each name is checked."""
        result = []
        for word in self.rc.get("switch_list").split():
            check_name(self.path, "switch_list", word)
            if word not in result:
                result.append(word)
        return result

    def exists(self, name: str) -> bool:
        return name in self.rc.get("switch_list").split()

    def get(self, name: str) -> Switch:
        """The validated switch called ``name``; unknown names are ``NotFound``."""
        if not self.exists(name):
            known = ", ".join(self.rc.get("switch_list").split()) or "none"
            raise NotFound(f"switch {name} does not exist (known switches: {known}; see 'hivectl switch list')")
        return self._read(name)

    def all(self) -> list[Switch]:
        return [self._read(n) for n in self.names()]

    def _read(self, name: str) -> Switch:
        src = self.path
        values = self.rc.values

        def get(kind: str) -> str:
            return values.get(_key(name, kind), "").strip()

        kind = get("type") or "standard"
        check_type(src, _key(name, "type"), kind)
        ports = tuple(check_ifname(src, _key(name, "ports"), p) for p in get("ports").split())
        vlan = check_vlan(src, _key(name, "vlan"), get("vlan")) if get("vlan") else None
        addr = addr6 = None
        if get("addr"):
            v4 = check_address(src, _key(name, "addr"), get("addr"))
            if not isinstance(v4, ipaddress.IPv4Interface):
                raise ConfigError(src, _key(name, "addr"), get("addr"), "addr_ holds the IPv4 address; "
                                                                       "IPv6 goes to addr6_")
            addr = v4
        if get("addr6"):
            v6 = check_address(src, _key(name, "addr6"), get("addr6"))
            if not isinstance(v6, ipaddress.IPv6Interface):
                raise ConfigError(src, _key(name, "addr6"), get("addr6"), "addr6_ holds the IPv6 address")
            addr6 = v6
        mtu = check_mtu(src, _key(name, "mtu"), get("mtu")) if get("mtu") else None
        bridge = check_ifname(src, _key(name, "bridge"), get("bridge")) if get("bridge") else ""
        forwards = tuple(check_forward(src, _key(name, "forward"), f) for f in get("forward").split())
        return Switch(name, kind, ports, vlan or None, addr, addr6, mtu,
                      validate.yesno(get("private")), bridge, validate.yesno(get("nat")), forwards)

    # -- changes (in memory; the caller saves through a plan) -------------------------------------------
    def put(self, switch: Switch) -> None:
        """Write every key of ``switch``, removing the keys it leaves empty (``sysrc``/``sysrc -x``)."""
        name = switch.name
        self.rc.list_add("switch_list", name)
        wanted = {
            "type": switch.type,
            "ports": " ".join(switch.ports),
            "vlan": "" if switch.vlan is None else str(switch.vlan),
            "addr": str(switch.addr) if switch.addr else "",
            "addr6": str(switch.addr6) if switch.addr6 else "",
            "mtu": "" if switch.mtu is None else str(switch.mtu),
            "private": "yes" if switch.private else "",
            "bridge": switch.bridge,
            "nat": "yes" if switch.nat else "",
            "forward": " ".join(f.text() for f in switch.forwards),
        }
        for kind, value in wanted.items():
            key = _key(name, kind)
            if value:
                if self.rc.get(key) != value:
                    self.rc.set(key, value)
            elif key in self.rc:
                self.rc.unset(key)

    def remove(self, name: str) -> None:
        """Forget a switch: ``switch_list`` and every per-switch key (``bridge_S`` too, unlike vm-bhyve)."""
        self.rc.list_remove("switch_list", name)
        for kind in PER_SWITCH_KEYS:
            self.rc.unset(_key(name, kind))

    def add_new(self, switch: Switch) -> None:
        if self.exists(switch.name):
            raise Conflict(f"switch {switch.name} already exists")
        self.put(switch)

    def text(self) -> str:
        return self.rc.text()

