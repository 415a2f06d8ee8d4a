"""Validation of every kind of value hivectl accepts, one function per kind.

Each function takes ``(source, key, value)`` and either returns the parsed value or raises
``ConfigError`` naming the source (file or command line), the key and the value. Checks follow what the
FreeBSD tools themselves accept (bhyve(8), truncate(1), zfsprops(7)), so an invalid value is refused when
it is written, not when bhyve refuses it at boot.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hivectl.errors import ConfigError
from hivectl.patterns import Pattern

Source = str | Path | None

NAME_RE = Pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SIZE_RE = Pattern(r"([0-9]+)([kKmMgGtTpPeE]?)([bB]?)")
_DISK_SIZE_RE = Pattern(r"([1-9][0-9]*)([KkMmGgTtPp]?)")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
_FILE_NAME_RE = Pattern(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}")
_MAC_RE = Pattern(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_UUID_RE = Pattern(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-dA-D][0-9a-fA-F]{3}-[0-9a-fA-F]{12}")
MAX_DISK_BYTES = (1 << 63) - 1  # off_t's largest value: what truncate(2) and a zvol's volsize can hold
MAX_MEMORY_BYTES = 1 << 52  # 4 PiB: beyond any amd64 guest's physical address space (bhyve's -m takes 64 bits)
_MAX_DIGITS = 24  # no valid number here is longer; int() of a huge string is slow (and limited since 3.11)
FALSE_WORDS = frozenset({"", "no", "false", "off", "0"})
BOOL_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "1", "0"})


def name(source: Source, key: str, value: str, what: str = "name") -> str:
    """Guest, switch, datastore and snapshot names: they become paths, dataset names and interface text.

    ``^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`` with no ``..``: nothing that a shell, a path or ZFS would treat
    specially, and short enough for every place a name ends up in.
    """
    if not value:
        raise ConfigError(source, key, value, f"a {what} cannot be empty")
    if len(value) > 63:
        raise ConfigError(source, key, value, f"a {what} is at most 63 characters (this one has {len(value)})")
    if not NAME_RE.fullmatch(value) or ".." in value:
        raise ConfigError(source, key, value,
                          f"a {what} must start with a letter or digit and contain only letters, digits, "
                          "'.', '_' and '-' (no '..')")
    return value


# Guest names. vm-bhyve's rule (lib/vm-util ``util::check_name``, FreeBSD 13 and later) is, ignoring
# case, ``^[a-z0-9][.a-z0-9_-]{0,229}[a-z0-9]$``: at most 231 characters. hivectl accepts the same
# characters (and, as it always did, one-character names and a last '.', '_' or '-') up to that length
# for a guest that exists, so a guest vm-bhyve made can be found, listed, started and destroyed.
VM_BHYVE_NAME_MAX = 231
GUEST_NAME_RE = Pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,230}")  # VM_BHYVE_NAME_MAX in all
# A name hivectl gives a new guest must also fit every file name hivectl makes from it: a file name holds
# NAME_MAX = 255 bytes (FreeBSD's and Linux's limits.h), and the longest hivectl derives is a backup's
# temporary file, ``.NAME.<UTC time, 23>.backup.tar.zst.<8>.tmp``, NAME + 53 (storage/backup.py), then
# ``.hivectl-tombstone-NAME-<8>`` (NAME + 28, model/staging.py) and the config's temporary file
# ``.NAME.conf.<pid>.<8>.tmp`` (up to NAME + 27, rcfile.py). tests/test_validate_names.py builds each of
# them for a name of this length. bhyve's own limit is higher (VM_MAX_NAMELEN, 229 bytes since FreeBSD
# 13, sys/amd64/include/vmm.h) and is checked at start (drivers/bhyve/driver.py) for guests vm-bhyve made.
NAME_MAX = 255
LONGEST_DERIVED_SUFFIX = 53
NEW_GUEST_NAME_MAX = NAME_MAX - LONGEST_DERIVED_SUFFIX


def guest_name(source: Source, key: str, value: str, new: bool = False) -> str:
    """A guest's name: vm-bhyve's characters, at most 231 characters for an existing guest, at most
    ``NEW_GUEST_NAME_MAX`` for one hivectl creates (``create``, ``rename``'s new name, ``clone``, restores,
    images); see the comment above for both numbers."""
    limit = NEW_GUEST_NAME_MAX if new else VM_BHYVE_NAME_MAX
    if not value:
        raise ConfigError(source, key, value, "a guest name cannot be empty")
    if len(value) > limit:
        why = (f"the longest file name hivectl makes from it adds {LONGEST_DERIVED_SUFFIX} characters and a "
               f"file name holds {NAME_MAX} bytes" if new else "vm-bhyve's limit")
        raise ConfigError(source, key, value,
                          f"a guest name is at most {limit} characters ({why}); this one has {len(value)}")
    if not GUEST_NAME_RE.fullmatch(value) or ".." in value:
        raise ConfigError(source, key, value,
                          "a guest name must start with a letter or digit and contain only letters, digits, "
                          "'.', '_' and '-' (no '..')")
    return value


# POSIX user and group names as pw(8) and useradd(8) accept them: portable characters, no leading '.' or
# '-', at most 32 characters (MAXLOGNAME is 33 with the NUL on FreeBSD, sys/sys/param.h).
_ACCOUNT_RE = Pattern(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")


def account(source: Source, key: str, value: str, what: str = "user") -> str:
    """A user or group name (its syntax only: a grant or a guest's ``owner=`` may name an account made later)."""
    if not _ACCOUNT_RE.fullmatch(value):
        raise ConfigError(source, key, value, f"a {what} name has 1 to 32 letters, digits, '.', '_' or '-' and "
                                              "does not start with '.' or '-'")
    return value


def yesno(value: str) -> bool:
    """vm-bhyve's boolean reading: empty/no/false/off/0 (any case) is false, anything else is true."""
    return value.strip().lower() not in FALSE_WORDS


def boolean(source: Source, key: str, value: str) -> bool:
    """A strict boolean for values hivectl writes; accepts the words both vm-bhyve and bhyve know."""
    if value.strip().lower() not in BOOL_WORDS:
        raise ConfigError(source, key, value, "expected yes or no (also true/false, on/off, 1/0)")
    return yesno(value)


def memory(source: Source, key: str, value: str) -> int:
    """A guest memory size as bhyve's ``-m`` parses it; returns bytes.

    A bare number below 1048576 is MiB (bhyve's rule), otherwise bytes; or a number with one unit letter
    (K, M, G, T, P, E; powers of 1024) and an optional ``B``. The size must be a whole number of 4 KiB pages.
    """
    match = _SIZE_RE.fullmatch(value.strip())
    if not match or len(match.group(1)) > _MAX_DIGITS:
        raise ConfigError(source, key, value, "expected a size such as 512M, 2G or 4096 (MiB)")
    number, unit, suffix_b = int(match.group(1)), match.group(2).lower(), match.group(3)
    if not unit and not suffix_b:
        size = number * (1 << 20) if number < 1048576 else number
    else:
        size = number * _UNITS[unit]
    if size <= 0:
        raise ConfigError(source, key, value, "memory must be larger than zero")
    if size % 4096:
        raise ConfigError(source, key, value, "memory must be a multiple of 4 KiB")
    if size > MAX_MEMORY_BYTES:
        raise ConfigError(source, key, value, f"memory is at most {format_size(MAX_MEMORY_BYTES)}")
    return size


def disk_size(source: Source, key: str, value: str) -> int:
    """A disk size as ``truncate -s`` and ``zfs create -V`` both accept it (``20G``, ``512M``); bytes."""
    match = _DISK_SIZE_RE.fullmatch(value.strip())
    if not match or len(match.group(1)) > _MAX_DIGITS:
        raise ConfigError(source, key, value, "expected a size such as 20G, 512M or 1T")
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size > MAX_DISK_BYTES:
        raise ConfigError(source, key, value, "a disk is at most 8E minus one byte (the largest file size)")
    return size


def integer(source: Source, key: str, value: str, low: int, high: int) -> int:
    """A decimal integer within ``[low, high]``."""
    text = value.strip()
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_DIGITS:
        raise ConfigError(source, key, value, f"expected a whole number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise ConfigError(source, key, value, f"expected a whole number from {low} to {high}")
    return number


def cpu_count(source: Source, key: str, value: str) -> int:
    """Number of vCPUs (bhyve accepts 1..65535; the host's hw.vmm.maxcpu is checked at start)."""
    return integer(source, key, value, 1, 65535)


def mac(source: Source, key: str, value: str) -> str:
    """A unicast, non-zero Ethernet address written ``xx:xx:xx:xx:xx:xx``."""
    if not _MAC_RE.fullmatch(value):
        raise ConfigError(source, key, value, "expected a MAC address like 58:9c:fc:00:12:34")
    first = int(value[:2], 16)
    if first & 1:
        raise ConfigError(source, key, value, "a multicast MAC address cannot be used for a NIC")
    if value.replace(":", "").strip("0") == "":
        raise ConfigError(source, key, value, "the all-zero MAC address cannot be used")
    return value.lower()


def uuid(source: Source, key: str, value: str) -> str:
    """An SMBIOS UUID that FreeBSD's ``uuid_from_string`` accepts (variant byte below 0xe0)."""
    if not _UUID_RE.fullmatch(value):
        raise ConfigError(source, key, value, "expected a UUID like 0b1c7f5e-6a53-11ef-8f0d-589cfc000001")
    return value.lower()


def choice(source: Source, key: str, value: str, allowed: tuple[str, ...]) -> str:
    """One word out of a fixed list."""
    if value not in allowed:
        raise ConfigError(source, key, value, "expected one of " + ", ".join(allowed))
    return value


def cidr(source: Source, key: str, value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An interface address with prefix length, IPv4 or IPv6 (``10.0.0.1/24``, ``fd00::1/64``)."""
    if "/" not in value:
        raise ConfigError(source, key, value, "expected an address with a prefix length, like 10.0.0.1/24")
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        raise ConfigError(source, key, value, "not a valid IPv4 or IPv6 address with prefix length") from None


def vlan(source: Source, key: str, value: str) -> int:
    """An 802.1Q VLAN id (0 clears it)."""
    return integer(source, key, value, 0, 4094)


def mtu(source: Source, key: str, value: str) -> int:
    """An interface MTU: if_bridge and tap accept 576..9000 in practice; bhyve virtio-net 46..65535."""
    return integer(source, key, value, 576, 9000)


def tcp_port(source: Source, key: str, value: str) -> int:
    return integer(source, key, value, 1, 65535)


def plain_path(source: Source, key: str, value: str) -> str:
    """A host path that will be passed as one argv element to a FreeBSD tool.

    bhyve splits its device options at commas, so a comma in a path would become a second option.
    """
    if not value:
        raise ConfigError(source, key, value, "a path cannot be empty")
    if "," in value:
        raise ConfigError(source, key, value, "bhyve cannot take a path containing ','")
    return value


def format_size(size: int) -> str:
    """Render bytes the way vm-bhyve's configs write sizes: the largest exact unit (``20G``, ``512M``)."""
    for unit in ("E", "P", "T", "G", "M", "K"):
        factor = _UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def file_name(source: Source, key: str, value: str) -> str:
    """A plain file name that becomes a path in a store: no directories, no leading dot, no odd bytes."""
    if not _FILE_NAME_RE.fullmatch(value) or ".." in value:
        raise ConfigError(source, key, value, "expected a plain file name (letters, digits, '.', '_', '-', '+', "
                                              "'~'; not starting with '.'; no '/' or '..')")
    return value
