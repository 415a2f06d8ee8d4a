"""``ifconfig(8)`` for the interfaces a bhyve host uses (sbin/ifconfig/ifclone.c, ifbridge.c).

Interfaces are records in the state (name, kind, flags, MTU, description, groups, addresses, bridge
members, span and private ports, vlan and vxlan parameters). The commands vm-bhyve and hivectl issue are
supported with FreeBSD's rules: cloning prints the new name only when it differs from the one typed,
parameters apply left to right (an error stops the rest but keeps what was done), group names may not
end in a digit, a bridge adopts its first member's MTU and later members are set to the bridge's,
``name`` prints the new name. A missing interface is ``ifconfig: interface X does not exist``, exit 1.

One deliberate difference: destroying a tap that a running bhyve has open fails with "Device busy"
(FreeBSD blocks until the tap is closed), so a test notices hivectl destroying taps too early.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import kld, state, vmm
from .common import die, pid_alive, run, scan_hex, warn

PROG = "ifconfig"
IFNAMSIZ = 16
FLAG_BITS = {"UP": 0x1, "BROADCAST": 0x2, "DEBUG": 0x4, "LOOPBACK": 0x8, "POINTOPOINT": 0x10,
             "RUNNING": 0x40, "NOARP": 0x80, "PROMISC": 0x100, "ALLMULTI": 0x200, "SIMPLEX": 0x800,
             "MULTICAST": 0x8000, "PPROMISC": 0x20000, "MONITOR": 0x40000}
MEMBER_BITS = {"LEARNING": 0x1, "DISCOVER": 0x2, "STP": 0x4, "SPAN": 0x8, "STICKY": 0x10, "EDGE": 0x20,
               "AUTOEDGE": 0x40, "PTP": 0x80, "AUTOPTP": 0x100, "PRIVATE": 0x800}
# cloner -> (kind, module that provides it)
CLONERS = {"bridge": ("bridge", "if_bridge"), "tap": ("tap", "if_tuntap"), "vmnet": ("tap", "if_tuntap"),
           "tun": ("tun", "if_tuntap"), "vlan": ("vlan", None), "vxlan": ("vxlan", "if_vxlan"),
           "lo": ("lo", None), "epair": ("ether", "if_epair")}
ETHER_KINDS = ("ether", "bridge", "tap", "vlan", "vxlan")
NO_ARG = {"up", "down", "-description", "-descr", "auto_linklocal", "-auto_linklocal", "promisc", "-promisc",
          "monitor", "-monitor", "arp", "-arp", "rxcsum", "-rxcsum", "txcsum", "-txcsum", "tso", "-tso",
          "lro", "-lro", "vlanmtu", "-vlanmtu", "vlanhwtag", "-vlanhwtag", "vlanhwfilter", "-vlanhwfilter",
          "vlanhwtso", "-vlanhwtso", "rxcsum6", "-rxcsum6", "txcsum6", "-txcsum6", "alias", "-alias",
          "delete", "vxlanlearn", "-vxlanlearn", "create", "destroy", "ifdisabled", "-ifdisabled",
          "accept_rtadv", "-accept_rtadv"}
ONE_ARG = {"mtu", "description", "descr", "group", "-group", "name", "addm", "deletem", "span", "-span",
           "private", "-private", "stp", "-stp", "edge", "-edge", "autoedge", "-autoedge", "ptp", "-ptp",
           "autoptp", "-autoptp", "learn", "-learn", "discover", "-discover", "sticky", "-sticky",
           "maxaddr", "timeout", "priority", "hellotime", "fwddelay", "maxage", "proto", "vlan", "vlandev",
           "vxlanid", "vxlanlocal", "vxlanremote", "vxlangroup", "vxlandev", "vxlanttl", "vxlanportrange",
           "link", "lladdr", "ether", "metric", "fib", "tunnelfib", "netmask", "broadcast", "prefixlen",
           "vlanpcp", "vlanproto"}
BRIDGE_MEMBER_FLAGS = {"stp": "STP", "edge": "EDGE", "autoedge": "AUTOEDGE", "ptp": "PTP",
                       "autoptp": "AUTOPTP", "learn": "LEARNING", "discover": "DISCOVER", "sticky": "STICKY",
                       "private": "PRIVATE"}


def tap_nodes(iface: dict[str, Any]) -> list[str]:
    """The /dev nodes of a tap: ``/dev/tapN`` for its unit (kept when renamed) and an alias for a new name.

    if_tuntap keeps the unit's node after ``ifconfig tapN name foo`` and adds ``/dev/foo`` (tunrename), so a
    renamed tap's unit stays visible under /dev while ``ifconfig -l`` shows only the new name.
    """
    if iface.get("kind") != "tap" or iface.get("unit") is None:
        return []
    unit_node = f"{iface['cloner']}{iface['unit']}"
    return [unit_node] if iface["name"] == unit_node else [unit_node, iface["name"]]


def sync_tap_nodes(before: list[str], after: list[str]) -> None:
    """Make ``$SIMHOST_ROOT/dev`` hold ``after`` instead of ``before`` (tap nodes only)."""
    from .paths import dev

    for node in before:
        if node not in after:
            dev(node).unlink(missing_ok=True)
    for node in after:
        dev(node).touch()


def fail(msg: str) -> None:
    """``ifconfig: msg``, exit 1."""
    die(PROG, msg, 1)


def flags_text(flags: list[str], table: dict[str, int]) -> str:
    value = 0
    for flag in flags:
        value |= table.get(flag, 0)
    names = [f for f, bit in sorted(table.items(), key=lambda kv: kv[1]) if f in flags]
    return f"{value:x}<{','.join(names)}>"


def mac_for(name: str, unit: int) -> str:
    """A stable FreeBSD-style address (58:9c:fc is the OUI FreeBSD uses for generated MACs)."""
    import hashlib

    digest = hashlib.md5(f"{name}/{unit}".encode()).digest()
    return "58:9c:fc:" + ":".join(f"{b:02x}" for b in digest[:3])


def parse_mac(text: str) -> str | None:
    octets = []
    pos = 0
    for index in range(6):
        if index:
            if not text.startswith(":", pos):
                return None
            pos += 1
        got = scan_hex(text, pos)
        if got is None or got[0] > 0xFF:
            return None
        octets.append(got[0])
        pos = got[1]
    if pos != len(text):
        return None
    return ":".join(f"{o:02x}" for o in octets)


class Ifconfig:
    """One ifconfig run against the state."""

    def __init__(self, st: dict[str, Any]) -> None:
        self.st = st
        self.ifs: dict[str, dict[str, Any]] = st["interfaces"]
        self.print_name = False

    # -- lookups -----------------------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        iface = self.ifs.get(name)
        if iface is None:
            fail(f"interface {name} does not exist")
        assert iface is not None
        return iface

    def bridge_of(self, member: str) -> str | None:
        for name, iface in self.ifs.items():
            if iface["kind"] == "bridge" and any(m["name"] == member for m in iface.get("members", [])):
                return name
        return None

    # -- cloning -----------------------------------------------------------------------------------------

    def cloner_for(self, name: str) -> tuple[str, int | None] | None:
        """(cloner, unit) for ``bridge``/``bridge7``/``em0.5``-style names, else None."""
        base = name.rstrip("0123456789")
        digits = name[len(base):]
        if base in CLONERS and (digits == "" or not (len(digits) > 1 and digits[0] == "0")):
            return base, int(digits) if digits else None
        parent, dot, tag = name.rpartition(".")
        if dot and parent in self.ifs and tag.isdigit():
            return "vlan", None
        return None

    def create(self, typed: str) -> str:
        found = self.cloner_for(typed)
        if found is None:
            fail("SIOCIFCREATE2: Invalid argument")
        assert found is not None
        cloner, unit = found
        kind, module = CLONERS[cloner]
        if module is not None and not kld.is_loaded(self.st, module):
            kld.load_into(self.st, module)
        if typed in self.ifs:
            fail("SIOCIFCREATE2: File exists")
        if "." in typed and cloner == "vlan" and typed not in CLONERS:
            name = typed
            unit = -1
        elif unit is None:
            used = {i.get("unit") for i in self.ifs.values() if i.get("cloner") == cloner}
            unit = 0
            while unit in used or f"{cloner}{unit}" in self.ifs:
                unit += 1
            name = f"{cloner}{unit}"
        else:
            if any(i.get("cloner") == cloner and i.get("unit") == unit for i in self.ifs.values()):
                fail("SIOCIFCREATE2: File exists")
            name = typed
        index = int(self.st.get("next_ifindex", len(self.ifs) + 1))
        self.st["next_ifindex"] = index + 1
        flags = ["BROADCAST", "SIMPLEX", "MULTICAST"] if kind in ETHER_KINDS else ["MULTICAST"]
        if kind == "lo":
            flags = ["LOOPBACK", "MULTICAST"]
        if kind == "tun":
            flags = ["POINTOPOINT", "SIMPLEX", "MULTICAST"]
        iface: dict[str, Any] = {
            "name": name, "kind": kind, "index": index, "cloner": cloner, "unit": unit, "flags": flags,
            "mtu": 16384 if kind == "lo" else 1500, "max_mtu": 65535, "description": "",
            "groups": [cloner if cloner != "vmnet" else "tap"] if kind != "ether" else [],
            "ether": mac_for(name, index) if kind in ETHER_KINDS else None,
            "inet": [], "inet6": [], "options": [], "auto_linklocal": kind != "lo",
        }
        if kind == "bridge":
            iface.update({"members": [], "spans": [], "maxaddr": 2000, "timeout": 1200, "proto": "rstp"})
        if kind == "vlan":
            iface.update({"vlan": None, "vlandev": None})
            if "." in name:
                parent, _, tag = name.rpartition(".")
                iface.update({"vlan": int(tag), "vlandev": parent})
                iface["groups"] = ["vlan"]
                iface["mtu"] = self.ifs[parent]["mtu"]
        if kind == "vxlan":
            iface.update({"vxlan": {"id": None, "local": None, "remote": None, "group": None, "dev": None,
                                    "ttl": 64, "learn": True}})
            iface["mtu"] = 1450
        self.ifs[name] = iface
        sync_tap_nodes([], tap_nodes(iface))
        if name != typed:
            self.print_name = True
        return name

    def destroy(self, name: str) -> None:
        iface = self.get(name)
        if iface.get("cloner") is None or name == "lo0":
            fail("SIOCIFDESTROY: Invalid argument")
        opener = iface.get("opened_by")
        if opener and pid_alive(int(opener[0]), opener[1]):
            fail("SIOCIFDESTROY: Device busy")
        for other in self.ifs.values():
            if other["kind"] == "bridge":
                other["members"] = [m for m in other["members"] if m["name"] != name]
                other["spans"] = [s for s in other["spans"] if s != name]
            if other.get("vlandev") == name:
                other["vlandev"] = None
                if "RUNNING" in other["flags"]:
                    other["flags"].remove("RUNNING")
        if iface["kind"] == "bridge":
            for member in iface["members"]:
                child = self.ifs.get(member["name"])
                if child and "PROMISC" in child["flags"]:
                    child["flags"].remove("PROMISC")
        sync_tap_nodes(tap_nodes(iface), [])
        del self.ifs[name]

    # -- parameters ----------------------------------------------------------------------------------------

    def apply(self, name: str, params: list[str]) -> str:
        """Apply parameters in order; returns the (possibly new) interface name."""
        i = 0
        while i < len(params):
            word = params[i]
            if word in ("inet", "inet6"):
                i = self.address(name, word, params, i + 1)
                continue
            if word in NO_ARG:
                self.flag_param(name, word)
                i += 1
                continue
            if word in ONE_ARG:
                if i + 1 >= len(params):
                    fail(f"'{word}' requires argument")
                name = self.one_param(name, word, params[i + 1])
                i += 2
                continue
            if word[:1].isdigit() or ":" in word:
                i = self.address(name, "inet6" if ":" in word else "inet", params, i)
                continue
            fail(f"{word}: bad value")
        return name

    def flag_param(self, name: str, word: str) -> None:
        iface = self.get(name)
        flags = iface["flags"]
        if word == "up":
            if "UP" not in flags:
                flags.append("UP")
            carrier = iface["kind"] in ("bridge", "ether", "lo", "vxlan") or (
                iface["kind"] == "vlan" and iface.get("vlandev"))
            if carrier and "RUNNING" not in flags:
                flags.append("RUNNING")
        elif word == "down":
            for flag in ("UP", "RUNNING") if iface["kind"] != "tap" else ("UP",):
                if flag in flags:
                    flags.remove(flag)
        elif word in ("-description", "-descr"):
            iface["description"] = ""
        elif word in ("auto_linklocal", "-auto_linklocal"):
            iface["auto_linklocal"] = word == "auto_linklocal"
        elif word in ("promisc", "-promisc", "monitor", "-monitor"):
            flag = "PPROMISC" if word.endswith("promisc") else "MONITOR"
            if word.startswith("-"):
                if flag in flags:
                    flags.remove(flag)
            elif flag not in flags:
                flags.append(flag)
        elif word in ("alias", "-alias", "delete"):
            fail(f"{word}: bad value")
        elif word in ("create",):
            fail("SIOCIFCREATE2: File exists")
        elif word == "destroy":
            self.destroy(name)
        else:
            opts = iface.setdefault("options", [])
            key = word.lstrip("-")
            if word.startswith("-") and key in opts:
                opts.remove(key)
            elif not word.startswith("-") and key not in opts:
                opts.append(key)

    def one_param(self, name: str, word: str, arg: str) -> str:
        iface = self.get(name)
        if word == "mtu":
            self.set_mtu(name, arg)
        elif word in ("description", "descr"):
            iface["description"] = arg
        elif word == "group":
            if len(arg) >= IFNAMSIZ:
                fail("setifgroup: group name too long")
            if arg[-1:].isdigit():
                fail("setifgroup: group names may not end in a digit")
            if arg in iface["groups"]:
                fail("SIOCAIFGROUP: File exists")
            iface["groups"].append(arg)
        elif word == "-group":
            if arg not in iface["groups"]:
                fail("SIOCDIFGROUP: No such file or directory")
            iface["groups"].remove(arg)
        elif word == "name":
            return self.rename(name, arg)
        elif word in ("addm", "deletem", "span", "-span") or word.lstrip("-") in BRIDGE_MEMBER_FLAGS:
            self.bridge_param(name, word, arg)
        elif word in ("maxaddr", "timeout", "priority", "hellotime", "fwddelay", "maxage"):
            if iface["kind"] != "bridge":
                fail(f"BRDGS{word.upper()[:6]}: Invalid argument")
            if not arg.isdigit():
                fail(f"invalid value: {arg}")
            iface[word] = int(arg)
        elif word == "proto":
            if arg not in ("stp", "rstp"):
                fail(f"unknown stp protocol: {arg}")
            iface["proto"] = arg
        elif word in ("vlan", "vlandev", "vlanpcp", "vlanproto"):
            self.vlan_param(name, word, arg)
        elif word.startswith("vxlan"):
            self.vxlan_param(name, word, arg)
        elif word in ("link", "lladdr", "ether"):
            if iface["kind"] not in ETHER_KINDS:
                fail("ioctl (SIOCSIFLLADDR): Invalid argument")
            if arg == "random":
                raw = bytearray(os.urandom(6))
                raw[0] = (raw[0] & 0xFC) | 0x02
                iface["ether"] = ":".join(f"{b:02x}" for b in raw)
            else:
                mac = parse_mac(arg)
                if mac is None:
                    fail("malformed link-level address")
                iface["ether"] = mac
        elif word in ("metric", "fib", "tunnelfib"):
            if not arg.isdigit():
                fail(f"{word} {arg}: bad value")
            iface[word] = int(arg)
        elif word in ("netmask", "broadcast", "prefixlen"):
            fail(f"{arg}: bad value")
        return name

    def set_mtu(self, name: str, arg: str) -> None:
        iface = self.get(name)
        if not arg.isdigit():
            fail(f"{arg}: invalid mtu")
        mtu = int(arg)
        if not 72 <= mtu <= 65535 or mtu > int(iface.get("max_mtu", 65535)):
            fail("ioctl SIOCSIFMTU (set mtu): Invalid argument")
        if iface["kind"] == "bridge":
            for member in iface["members"]:
                child = self.ifs[member["name"]]
                if mtu > int(child.get("max_mtu", 65535)):
                    fail("ioctl SIOCSIFMTU (set mtu): Invalid argument")
            for member in iface["members"]:
                self.ifs[member["name"]]["mtu"] = mtu
        elif iface["kind"] == "vlan" and iface.get("vlandev") and mtu > self.ifs[iface["vlandev"]]["mtu"]:
            fail("ioctl SIOCSIFMTU (set mtu): Invalid argument")
        iface["mtu"] = mtu

    def rename(self, name: str, new: str) -> str:
        if new in self.ifs:
            fail("ioctl SIOCSIFNAME (set name): File exists")
        if not new or len(new) >= IFNAMSIZ or "/" in new:
            fail("ioctl SIOCSIFNAME (set name): Invalid argument")
        iface = self.ifs.pop(name)
        old_nodes = tap_nodes(iface)
        iface["name"] = new
        self.ifs[new] = iface
        sync_tap_nodes(old_nodes, tap_nodes(iface))
        for other in self.ifs.values():
            for member in other.get("members", []):
                if member["name"] == name:
                    member["name"] = new
            if "spans" in other:
                other["spans"] = [new if s == name else s for s in other["spans"]]
            if other.get("vlandev") == name:
                other["vlandev"] = new
            vx = other.get("vxlan")
            if vx and vx.get("dev") == name:
                vx["dev"] = new
        for rec in self.st.get("running", {}).values():
            rec["taps"] = [new if t == name else t for t in rec.get("taps", [])]
        self.print_name = True
        return new

    def bridge_param(self, name: str, word: str, arg: str) -> None:
        iface = self.get(name)
        ioctl = {"addm": "BRDGADD", "deletem": "BRDGDEL", "span": "BRDGADDS", "-span": "BRDGDELS"}.get(
            word, "BRDGSIFFLGS")
        if iface["kind"] != "bridge":
            fail(f"{ioctl} {arg}: Invalid argument")
        members = iface["members"]
        member = next((m for m in members if m["name"] == arg), None)
        child = self.ifs.get(arg)
        if word == "addm":
            if child is None:
                fail(f"{ioctl} {arg}: No such file or directory")
            assert child is not None
            if member is not None:
                fail(f"{ioctl} {arg}: File exists")
            if arg == name or child["kind"] not in ("ether", "tap", "vlan", "vxlan"):
                fail(f"{ioctl} {arg}: Invalid argument")
            if self.bridge_of(arg) is not None or arg in iface["spans"]:
                fail(f"{ioctl} {arg}: Device busy")
            if not members:
                iface["mtu"] = child["mtu"]
            elif child["mtu"] != iface["mtu"]:
                if iface["mtu"] > int(child.get("max_mtu", 65535)):
                    fail(f"{ioctl} {arg}: Invalid argument")
                child["mtu"] = iface["mtu"]
            members.append({"name": arg, "flags": ["LEARNING", "DISCOVER", "AUTOEDGE", "AUTOPTP"]})
            if "PROMISC" not in child["flags"]:
                child["flags"].append("PROMISC")
        elif word == "deletem":
            if member is None:
                fail(f"{ioctl} {arg}: No such file or directory")
            members.remove(member)
            if child is not None and "PROMISC" in child["flags"]:
                child["flags"].remove("PROMISC")
        elif word == "span":
            if child is None:
                fail(f"{ioctl} {arg}: No such file or directory")
            if arg in iface["spans"]:
                fail(f"{ioctl} {arg}: File exists")
            if member is not None or self.bridge_of(arg) is not None:
                fail(f"{ioctl} {arg}: Device busy")
            iface["spans"].append(arg)
        elif word == "-span":
            if arg not in iface["spans"]:
                fail(f"{ioctl} {arg}: No such file or directory")
            iface["spans"].remove(arg)
        else:
            if member is None:
                fail(f"BRDGGIFFLGS {arg}: No such file or directory")
            assert member is not None
            flag = BRIDGE_MEMBER_FLAGS[word.lstrip("-")]
            if word.startswith("-"):
                if flag in member["flags"]:
                    member["flags"].remove(flag)
            elif flag not in member["flags"]:
                member["flags"].append(flag)

    def vlan_param(self, name: str, word: str, arg: str) -> None:
        iface = self.get(name)
        if iface["kind"] != "vlan":
            fail("SIOCGETVLAN: Invalid argument")
        if word == "vlan":
            if not arg.isdigit() or not 0 <= int(arg) <= 4094:
                fail(f"invalid vlan tag: {arg}")
            tag: int | None = int(arg)
            parent = iface.get("vlandev")
        elif word == "vlandev":
            if arg not in self.ifs:
                fail(f"interface {arg} does not exist")
            tag, parent = iface.get("vlan"), arg
            if self.ifs[arg]["kind"] not in ("ether", "bridge", "tap", "vxlan"):
                fail("SIOCSETVLAN: Protocol not supported")
        else:
            return
        if parent is not None and tag is not None:
            for other_name, other in self.ifs.items():
                if other_name != name and other.get("vlandev") == parent and other.get("vlan") == tag:
                    fail("SIOCSETVLAN: File exists")
        iface["vlan"] = tag
        iface["vlandev"] = parent
        if parent is not None:
            iface["mtu"] = self.ifs[parent]["mtu"]

    def vxlan_param(self, name: str, word: str, arg: str) -> None:
        iface = self.get(name)
        if iface["kind"] != "vxlan":
            fail(f"{word}: Invalid argument")
        vx = iface["vxlan"]
        if word == "vxlanid":
            if not arg.isdigit() or not 0 <= int(arg) < 1 << 24:
                fail(f"invalid network identifier: {arg}")
            vx["id"] = int(arg)
        elif word in ("vxlanlocal", "vxlanremote", "vxlangroup"):
            addr = _ip(arg)
            if addr is None:
                fail(f"error in parsing {word[5:]} address string: {arg}")
            assert addr is not None
            if word == "vxlangroup" and not addr.is_multicast:
                fail(f"group address must be multicast: {arg}")
            if word == "vxlanremote" and addr.is_multicast:
                fail(f"remote address must be unicast: {arg}")
            vx[word[5:]] = arg
        elif word == "vxlandev":
            if arg not in self.ifs:
                fail(f"interface {arg} does not exist")
            vx["dev"] = arg
        elif word == "vxlanttl":
            if not arg.isdigit() or not 0 <= int(arg) <= 255:
                fail(f"invalid TTL value: {arg}")
            vx["ttl"] = int(arg)

    def address(self, name: str, family: str, params: list[str], i: int) -> int:
        """``inet ADDR[/len] [netmask M] [alias|-alias|delete]`` and the inet6 form."""
        iface = self.get(name)
        if i >= len(params):
            fail(f"'{family}' requires argument")
        text = params[i]
        i += 1
        addr_text, slash, plen_text = text.partition("/")
        addr = _ip(addr_text)
        want_v6 = family == "inet6"
        if addr is None or (addr.version == 6) != want_v6:
            fail(f"{text}: bad value")
        assert addr is not None
        maxlen = 128 if want_v6 else 32
        if slash:
            if not plen_text.isdigit() or int(plen_text) > maxlen:
                fail(f"{text}: bad value")
            plen = int(plen_text)
        else:
            plen = 64 if want_v6 else _classful(addr_text)
        action = "set"
        while i < len(params):
            word = params[i]
            if word in ("alias", "add"):
                action = "alias"
                i += 1
            elif word in ("-alias", "delete", "remove"):
                action = "delete"
                i += 1
            elif word in ("netmask", "prefixlen") and i + 1 < len(params):
                value = params[i + 1]
                plen = _mask_len(value) if word == "netmask" else int(value) if value.isdigit() else -1
                if plen < 0 or plen > maxlen:
                    fail(f"{value}: bad value")
                i += 2
            elif word == "broadcast" and i + 1 < len(params):
                i += 2
            else:
                break
        key = "inet6" if want_v6 else "inet"
        current: list[dict[str, Any]] = iface.setdefault(key, [])
        normal = str(addr)
        existing = next((a for a in current if a["addr"] == normal), None)
        if action == "delete":
            if existing is None:
                fail(f"ioctl (SIOCDIFADDR{'_IN6' if want_v6 else ''}): Can't assign requested address")
            current.remove(existing)
            return i
        if existing is not None and action == "alias":
            fail(f"ioctl (SIOCAIFADDR{'_IN6' if want_v6 else ''}): File exists")
        if existing is not None:
            existing["prefixlen"] = plen
        elif action == "set" and current and not want_v6:
            current[0] = {"addr": normal, "prefixlen": plen}
        else:
            current.append({"addr": normal, "prefixlen": plen})
        if "UP" not in iface["flags"]:
            iface["flags"].append("UP")
            if iface["kind"] in ("bridge", "ether", "lo", "vxlan") and "RUNNING" not in iface["flags"]:
                iface["flags"].append("RUNNING")
        return i

    # -- output --------------------------------------------------------------------------------------------

    def status(self, name: str) -> list[str]:
        iface = self.get(name)
        lines = [f"{name}: flags={flags_text(iface['flags'], FLAG_BITS)} metric {iface.get('metric', 0)} "
                 f"mtu {iface['mtu']}"]
        if iface.get("description"):
            lines.append(f"\tdescription: {iface['description']}")
        if iface.get("options"):
            lines.append(f"\toptions=0<{','.join(o.upper() for o in iface['options'])}>")
        if iface.get("ether"):
            lines.append(f"\tether {iface['ether']}")
        for entry in iface.get("inet", []):
            mask = (0xFFFFFFFF << (32 - entry["prefixlen"])) & 0xFFFFFFFF
            bcast = _broadcast(entry["addr"], entry["prefixlen"])
            line = f"\tinet {entry['addr']} netmask 0x{mask:08x}"
            if iface["kind"] != "lo":
                line += f" broadcast {bcast}"
            lines.append(line)
        for entry in iface.get("inet6", []):
            addr = entry["addr"]
            scope = ""
            if addr.startswith("fe80:"):
                addr = f"{addr}%{name}"
                scope = f" scopeid 0x{iface['index']:x}"
            lines.append(f"\tinet6 {addr} prefixlen {entry['prefixlen']}{scope}")
        if iface["kind"] == "vlan":
            lines.append(f"\tvlan: {iface.get('vlan') if iface.get('vlan') is not None else 0} vlanproto: "
                         f"802.1q vlanpcp: 0 parent interface: {iface.get('vlandev') or '<none>'}")
        if iface["kind"] == "vxlan":
            vx = iface["vxlan"]
            peer = f"group {vx['group']}:4789" if vx.get("group") else f"remote {vx.get('remote')}:4789"
            lines.append(f"\tvxlan vni {vx.get('id')} local {vx.get('local')}:4789 {peer}")
        if iface["kind"] == "bridge":
            lines.append("\tid 00:00:00:00:00:00 priority 32768 hellotime 2 fwddelay 15")
            lines.append(f"\tmaxage 20 holdcnt 6 proto {iface.get('proto', 'rstp')} maxaddr "
                         f"{iface.get('maxaddr', 2000)} timeout {iface.get('timeout', 1200)}")
            lines.append("\troot id 00:00:00:00:00:00 priority 32768 ifcost 0 port 0")
            for member in reversed(iface["members"]):
                child = self.ifs.get(member["name"], {})
                lines.append(f"\tmember: {member['name']} flags={flags_text(member['flags'], MEMBER_BITS)}")
                lines.append(f"\t        port {child.get('index', 0)} priority 128 path cost 2000000")
            for span in iface.get("spans", []):
                lines.append(f"\tspan: {span}")
        if iface.get("groups"):
            lines.append(f"\tgroups: {' '.join(iface['groups'])}")
        if iface["kind"] in ("ether", "tap", "vlan", "vxlan"):
            lines.append("\tmedia: Ethernet autoselect (1000baseT <full-duplex>)" if iface["kind"] == "ether"
                         else "\tmedia: Ethernet autoselect")
            active = "RUNNING" in iface["flags"] and "UP" in iface["flags"]
            lines.append(f"\tstatus: {'active' if active else 'no carrier'}")
        nd6 = ["PERFORMNUD"]
        if iface["kind"] == "bridge" and not iface.get("inet6"):
            nd6.append("IFDISABLED")
        if iface.get("auto_linklocal"):
            nd6.append("AUTO_LINKLOCAL")
        bits = {"PERFORMNUD": 0x1, "IFDISABLED": 0x8, "AUTO_LINKLOCAL": 0x20}
        lines.append(f"\tnd6 options={flags_text(nd6, bits)}")
        return lines


def _ip(text: str) -> Any:
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _classful(text: str) -> int:
    first = int(text.split(".")[0])
    return 8 if first < 128 else 16 if first < 192 else 24


def _mask_len(text: str) -> int:
    if text.startswith("0x"):
        try:
            value = int(text, 16)
        except ValueError:
            return -1
    else:
        addr = _ip(text)
        if addr is None or addr.version != 4:
            return -1
        value = int(addr)
    bits = bin(value)[2:].rjust(32, "0")
    return bits.index("0") if "0" in bits else 32


def _broadcast(addr: str, plen: int) -> str:
    import ipaddress

    return str(ipaddress.ip_network(f"{addr}/{plen}", strict=False).broadcast_address)


def main(args: list[str]) -> int:
    """``ifconfig``, ``ifconfig -l [ether]``, ``ifconfig -g GROUP``, ``ifconfig IF [create] [params]``."""
    if not args or args[0] == "-a":
        st = state.load()
        tool = Ifconfig(st)
        for name in sorted(st["interfaces"], key=lambda n: st["interfaces"][n]["index"]):
            print("\n".join(tool.status(name)))
        return 0
    if args[0] == "-l":
        st = state.load()
        names = sorted(st["interfaces"], key=lambda n: st["interfaces"][n]["index"])
        rest = args[1:]
        if rest and rest[0] == "ether":
            names = [n for n in names if st["interfaces"][n]["kind"] in ETHER_KINDS]
        elif rest and rest[0] in ("-d", "-u"):
            want_up = rest[0] == "-u"
            names = [n for n in names if ("UP" in st["interfaces"][n]["flags"]) == want_up]
        print(" ".join(names))
        return 0
    if args[0] == "-g":
        if len(args) < 2:
            warn(PROG, "option requires an argument -- g")
            return 1
        st = state.load()
        for name in sorted(st["interfaces"], key=lambda n: st["interfaces"][n]["index"]):
            if args[1] in st["interfaces"][name]["groups"]:
                print(name)
        return 0
    if args[0].startswith("-"):
        print("usage: ifconfig [-j jail] [-f type:format] [-L] [-C] [-g groupname] interface address_family\n"
              "                [address [dest_address]] [parameters]\n"
              "       ifconfig [-j jail] interface create\n"
              "       ifconfig [-j jail] -a [-L] [-C] [-g groupname] [-d] [-m] [-u] [-v] [address_family]\n"
              "       ifconfig [-j jail] -l [-d] [-u] [address_family]\n"
              "       ifconfig [-j jail] [-L] [-C] [-g groupname] [-d] [-m] [-u] [-v]", file=sys.stderr)
        return 1
    name, params = args[0], args[1:]
    if not params:
        tool = Ifconfig(state.load())
        print("\n".join(tool.status(name)))
        return 0
    with state.transaction() as st:
        vmm.prune_running(st)
        tool = Ifconfig(st)
        if params[0] == "create":
            name = tool.create(name)
            params = params[1:]
        elif params[0] == "destroy" and len(params) == 1:
            tool.destroy(name)
            return 0
        else:
            tool.get(name)
        name = tool.apply(name, params)
    if tool.print_name:
        print(name)
    return 0


def ifconfig_main() -> int:
    """Entry point of ``bin/ifconfig``."""
    return run(main)
