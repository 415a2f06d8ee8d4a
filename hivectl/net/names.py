"""Names derived from switch and guest names: bridges, lookup groups, taps, VALE ports, pf anchors, nft tables.

Every derivation here is part of the compatibility contract (vm-bhyve's ``lib/vm-switch*``): a host managed by
vm-bhyve yesterday has bridges called ``vm-public`` tagged ``viid-<md5>@``, and hivectl must find them, and
a guest's VALE port must keep its identity. So these are pure functions with the exact hash slices
vm-bhyve uses, kept in one place so the FreeBSD and Linux planners cannot drift apart.
"""

from __future__ import annotations

from hivectl import patterns
from hivectl.patterns import Pattern

# vm-bhyve names the bridge ``vm-<switch>`` when the switch name has at most 12 characters; longer names
# keep the kernel's ``bridgeN`` and carry ``vm/<switch>`` as description (FreeBSD names are ≤15 chars).
FREEBSD_SHORT_SWITCH = 12
IFNAMSIZ = 15  # usable characters of an interface name on FreeBSD and Linux (IFNAMSIZ - 1)

SWITCH_GROUP = "vm-switch"  # every bridge hivectl (or vm-bhyve) manages
PORT_GROUP = "vm-port"  # every guest tap
VLAN_GROUP = "vm-vlan"  # VLAN children and vxlan interfaces created for switches

_IFNAME_RE = Pattern(r"[A-Za-z][A-Za-z0-9_.-]{0,14}")


def md5_hex(text: str) -> str:
    """``md5 -qs TEXT`` on FreeBSD: the hex digest of the bare string (no newline)."""
    import hashlib  # only FreeBSD's plans need it; its OpenSSL binding costs every start on Linux

    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def viid(name: str) -> str:
    """The lookup group vm-bhyve tags a switch's bridge (or a VLAN child) with: ``viid-<5 hex>@``.

    Group names may not end in a digit on FreeBSD, hence the ``@``. The bridge is always found through this
    group, so a bridge renamed by the administrator (or a long-named switch's ``bridgeN``) is still found.
    """
    return f"viid-{md5_hex(name)[:5]}@"


def freebsd_bridge_name(switch: str) -> str | None:
    """``vm-<switch>`` when it fits vm-bhyve's 12-character rule, else None (the kernel picks ``bridgeN``)."""
    return f"vm-{switch}" if len(switch) <= FREEBSD_SHORT_SWITCH else None


def bridge_description(switch: str) -> str:
    return f"vm/{switch}"


def vlan_child(port: str, vlan: int) -> str:
    """The VLAN interface vm-bhyve creates on a physical port: ``<port>.<vlan>`` (``em0.10``)."""
    return f"{port}.{vlan}"


def vlan_description(switch: str, port: str, vlan: int) -> str:
    return f"vm-vlan/{switch}/{vlan_child(port, vlan)}"


def vale_switch(switch: str) -> str:
    return f"vale{md5_hex(switch)[:5]}"


def vale_backend(switch: str, mac: str) -> str:
    """bhyve's netmap backend for a VALE switch port: ``vale<md5(switch)[:5]>:<md5(mac)[:5]>``."""
    return f"{vale_switch(switch)}:{md5_hex(mac)[:5]}"


def netgraph_backend(switch: str, link: int) -> str:
    """bhyve's netgraph backend: the ``ng_bridge`` node named after the switch, hook ``link<N>``."""
    return f"netgraph,path={switch}:,peerhook=link{link}"


def vxlan_multicast(switch: str) -> str:
    """The multicast group of a vxlan switch: ``239.`` and the first three bytes of md5(switch)."""
    digest = md5_hex(switch)
    return "239." + ".".join(str(int(digest[i : i + 2], 16)) for i in (0, 2, 4))


def vxlan_interface(vni: int) -> str:
    return f"vxlan{vni}"


def tap_description(guest: str, index: int, switch: str) -> str:
    """What a guest's tap says about itself: ``vmnet/<guest>/<n>/<switch>`` (``custom`` without a switch).

    ``switch info`` and ``info`` read the owning guest back from it, as vm-bhyve does.
    """
    return f"vmnet/{guest}/{index}/{switch or 'custom'}"


def parse_tap_description(text: str) -> tuple[str, int, str] | None:
    """``(guest, index, switch)`` from a tap description, or None if it is not one of ours."""
    parts = text.strip().split("/")
    if len(parts) != 4 or parts[0] != "vmnet" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2]), parts[3]


def _shorten(prefix: str, text: str, suffix: str = "") -> str:
    """``prefix + text + suffix`` if it fits IFNAMSIZ, else text cut and tagged with 4 hex of its md5."""
    whole = f"{prefix}{text}{suffix}"
    if len(whole) <= IFNAMSIZ:
        return whole
    tag = md5_hex(text)[:4]
    room = IFNAMSIZ - len(prefix) - len(suffix) - len(tag) - 1
    return f"{prefix}{text[:room]}~{tag}{suffix}" if room > 0 else f"{prefix}{tag}{suffix}"


def linux_bridge_name(switch: str) -> str:
    """``vm-<switch>`` on Linux when it fits 15 characters; longer names are cut and tagged with a hash.

    Deterministic, so every command finds the bridge by name alone (Linux has no named interface groups).
    """
    return _shorten("vm-", switch)


def linux_tap_name(guest: str, index: int) -> str:
    """A guest NIC's tap on Linux: ``hv<N>-<guest>``, ≤15 characters, stable across restarts.

    Stable names let firewall rules and monitoring follow a guest (churchers#397) and let a restart find
    and remove a tap a crashed run left behind.
    """
    return _shorten(f"hv{index}-", guest)


def nft_table(switch: str) -> str:
    """The nftables table (family ``inet``) that holds one switch's NAT and port forwards."""
    clean = patterns.sub(r"[^A-Za-z0-9_]", "_", switch)
    if clean != switch:  # "a-b" and "a_b" must not share a table
        clean = f"{clean}_{md5_hex(switch)[:4]}"
    return f"hivectl_{clean}"


def pf_anchor(switch: str) -> str:
    """The pf anchor holding one switch's rules; the administrator's own ruleset is never touched."""
    return f"hivectl/{switch}"


def is_ifname(value: str) -> bool:
    """A plausible interface name (letters first; letters, digits, ``_ . -``; ≤15 characters)."""
    return bool(_IFNAME_RE.fullmatch(value))
