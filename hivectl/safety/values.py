"""Values are values: what a value may contain, and one rule per option syntax hivectl builds.

A value from a config, a template or the command line must never become a second option or a second key.
Each syntax has one rule, applied where the argv (or file) is built, not by each caller:

- **text anywhere** (``plain_text``): no NUL and no line break of any kind. vm-bhyve's sh reader splits
  lines at ``\\n`` only, while Python's ``str.splitlines`` also splits at ``\\r``, ``\\v``, ``\\f``,
  ``\\x1c``-``\\x1e``, U+0085, U+2028 and U+2029, so such a character would make one file mean different
  keys to hivectl and to vm-bhyve; a NUL cannot be passed in argv at all (execve(2)).
- **bhyve comma lists** (``-s``, ``-l``; bhyve(8), usr.sbin/bhyve/pci_emul.c): a value may not contain ``,`` (the
  separator), nor ``\\`` or ``%`` (bhyve's config-value expansion, bhyve_config(5)); option names are
  ``[A-Za-z0-9_-]+`` (a ``.`` is fatal, an ``=`` would split the name).
- **bhyve -k files** (bhyve_config(5)): one ``key=value`` per line; ``\\`` and ``%`` are escaped.
- **QEMU option strings** (qemu(1), "-o"-style lists): a ``,`` in a value is doubled.
- **zfs -o** (zfsprops(7)): each property is its own argv word; the property name comes from an allow-list.

Option lists a user may write (``diskN_opts``, ``passthruN_options``, ``zfs_*_opts``) accept only the option
names bhyve or zfs define for that device, never the ones hivectl sets itself (``path``, ``mountpoint``...).
"""

from __future__ import annotations

from pathlib import Path

from hivectl.errors import ConfigError, HivectlError
from hivectl.patterns import Pattern
from hivectl.safety.text import LINE_BREAKS as LINE_BREAKS
from hivectl.safety.text import argv_words as argv_words

Source = str | Path | None

# Every character str.splitlines() breaks at, plus NUL (defined with the argv check in hivectl/safety/text.py).
_BREAK_RE = Pattern("[" + "".join(LINE_BREAKS) + "]")

BHYVE_OPTION_NAME = Pattern(r"[A-Za-z0-9_-]+")
_BHYVE_BAD = {",": "bhyve splits options at ','", "\\": "bhyve treats '\\' as an escape character",
              "%": "bhyve expands '%(...)' in values"}

# -- option names a user may give in an option list, per device (bhyve(8), "Block storage devices") --------
BLOCKIF_OPTIONS = frozenset({"nocache", "direct", "sync", "ro", "nodelete", "sectorsize", "bootindex"})
DISK_OPTIONS: dict[str, frozenset[str]] = {
    "virtio-blk": BLOCKIF_OPTIONS | {"ser", "serial"},
    "ahci-hd": BLOCKIF_OPTIONS | {"nmrr", "ser", "rev", "model"},
    "ahci-cd": BLOCKIF_OPTIONS | {"nmrr", "ser", "rev", "model"},
    "nvme": BLOCKIF_OPTIONS | {"maxq", "qsz", "ioslots", "sectsz", "ser", "eui64", "dsm"},
    "virtio-scsi": frozenset({"iid", "bootindex"}),
    "virtio-9p": frozenset({"ro"}),
}
PASSTHRU_OPTIONS = frozenset({"rom", "bootindex"})
# zfsprops(7) properties a template may set on a guest's dataset or zvols. Not: mountpoint, canmount,
# volmode, volsize, readonly, sharenfs/sharesmb, keylocation... (hivectl owns where data lives and how it is
# exposed; a key location names a host file).
ZFS_PROPERTIES = frozenset({
    "atime", "relatime", "checksum", "compression", "compress", "copies", "dedup", "dnodesize", "logbias",
    "primarycache", "secondarycache", "recordsize", "volblocksize", "redundant_metadata", "sync", "quota",
    "refquota", "reservation", "refreservation", "special_small_blocks", "xattr", "snapdir", "snapdev",
})
_ZFS_USER_PROPERTY = Pattern(r"[a-z0-9][a-z0-9_.-]*:[a-z0-9_.:-]+")  # module:property (zfsprops(7))
_ZFS_VALUE = Pattern(r"[A-Za-z0-9_.:+-]+")


class OptionInjection(HivectlError):
    """A value reached an option string it could escape from: a bug upstream of the renderer, refused."""


def plain_text(source: Source, key: str, value: str) -> str:
    """Refuse NUL and every line break (see the module doc); return ``value``."""
    match = _BREAK_RE.search(value)
    if match:
        raise ConfigError(source, key, value, f"values cannot contain {LINE_BREAKS[match.group()]}")
    return value


def has_break(value: str) -> bool:
    return _BREAK_RE.search(value) is not None


# -- bhyve ------------------------------------------------------------------------------------------------


def bhyve_value(source: Source, key: str, value: str) -> str:
    """A value inside a bhyve comma list: refused if it could split or expand (returns it unchanged)."""
    plain_text(source, key, value)
    for bad, why in _BHYVE_BAD.items():
        if bad in value:
            raise ConfigError(source, key, value, why)
    return value


def bhyve_token(token: str) -> str:
    """The renderer's last check on one comma-list item: anything that could add an option is a bug."""
    if "," in token or "\\" in token or "%" in token or has_break(token):
        raise OptionInjection(f"refusing to build a bhyve option from a {len(token)}-character value: it would "
                              "split or expand")  # the value is not quoted: it may be a secret (vnc_password)
    return token


def bhyve_option_name(name: str) -> str:
    if not BHYVE_OPTION_NAME.fullmatch(name):
        raise OptionInjection(f"refusing to build a bhyve option named {name!r}")
    return name


def bhyve_config_value(value: str) -> str:
    """A value for a ``-k`` file line: one line, ``\\`` and ``%`` escaped so bhyve reads back ``value``."""
    if has_break(value):
        raise OptionInjection(f"refusing to write a {len(value)}-character bhyve config value with a line break "
                              "(not shown: it may be a secret)")
    return value.replace("\\", "\\\\").replace("%", "\\%")


_CONFIG_KEY = Pattern(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def bhyve_config_key(key: str) -> str:
    if not _CONFIG_KEY.fullmatch(key):
        raise OptionInjection(f"refusing to write the bhyve config key {key!r}")
    return key


Options = list[tuple[str, str | None]]


def option_list(source: Source, key: str, value: str, allowed: frozenset[str], what: str) -> Options:
    """A user's comma-separated ``name[=value]`` list, checked against the names ``allowed`` for ``what``."""
    plain_text(source, key, value)
    result: Options = []
    if not value:
        return result
    items = value.split(",")
    for item in items:  # the syntax first, so a stray comma is reported as such
        if not BHYVE_OPTION_NAME.fullmatch(item.partition("=")[0]):
            raise ConfigError(source, key, value, f"option {item!r} is not name or name=value (names use letters, "
                                                  "digits, '_' and '-')")
    for item in items:
        name, sep, text = item.partition("=")
        if name not in allowed:
            raise ConfigError(source, key, value, f"{name!r} is not an option {what} takes here (allowed: "
                                                  f"{', '.join(sorted(allowed))})")
        if sep and not text:
            raise ConfigError(source, key, value, f"option {item!r} has no value after '='")
        bhyve_value(source, key, text)
        result.append((name, text if sep else None))
    return result


def disk_options(source: Source, key: str, value: str, disk_type: str) -> Options:
    allowed = DISK_OPTIONS.get(disk_type, BLOCKIF_OPTIONS)
    return option_list(source, key, value, allowed, f"a {disk_type or 'disk'} disk")


def any_disk_options(source: Source, key: str, value: str) -> None:
    """The key-table check for ``diskN_opts`` (the device type is not known there): any block option."""
    option_list(source, key, value, frozenset().union(*DISK_OPTIONS.values()), "a disk")


def passthru_options(source: Source, key: str, value: str) -> None:
    option_list(source, key, value, PASSTHRU_OPTIONS, "a passthru device")


# -- zfs --------------------------------------------------------------------------------------------------


def zfs_properties(source: Source, key: str, value: str) -> list[str]:
    """``zfs_*_opts``: space-separated ``property=value`` from the allow-list; returns ``-o`` arguments."""
    plain_text(source, key, value)
    result: list[str] = []
    for item in value.split():
        prop, sep, text = item.partition("=")
        if not sep or not text:
            raise ConfigError(source, key, value, f"expected space-separated property=value pairs, not {item!r}")
        if prop not in ZFS_PROPERTIES and not _ZFS_USER_PROPERTY.fullmatch(prop):
            raise ConfigError(source, key, value, f"zfs property {prop!r} cannot be set by a guest config (allowed: "
                                                  f"{', '.join(sorted(ZFS_PROPERTIES))}, or module:name user "
                                                  "properties)")
        if not _ZFS_VALUE.fullmatch(text):
            raise ConfigError(source, key, value, f"zfs property value {text!r} uses letters, digits and '_.:+-' "
                                                  "only")
        result.append(f"{prop}={text}")
    return result


# -- QEMU -------------------------------------------------------------------------------------------------


def qemu_value(value: str) -> str:
    """A value inside a QEMU option string: ``,`` doubled (QEMU's own escape); no line break or NUL."""
    if has_break(value):
        raise OptionInjection(f"refusing to build a QEMU option from a {len(value)}-character value: it contains "
                              "a line break or NUL (not shown: it may be a secret)")
    return value.replace(",", ",,")


# -- numbers ----------------------------------------------------------------------------------------------

MAX_DISK_BYTES = (1 << 63) - 1  # off_t's largest value: what truncate(2) and zvols can take
