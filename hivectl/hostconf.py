"""Host-level settings: ``vm_dir``, ``vm_list``, ``vm_delay``, ``vm_disable_host_checks`` (vm-bhyve's
rc.conf variables).

On FreeBSD they are read from exactly the files vm-bhyve reads, in the same order, so a host switches without
migration: vm-bhyve's ``vm`` script calls rc.subr's ``load_rc_config vm``, which sources /etc/rc.conf and
/etc/rc.conf.local (``rc_conf_files`` of /etc/defaults/rc.conf), then the service's own file
/etc/rc.conf.d/vm and /usr/local/etc/rc.conf.d/vm (``local_startup``'s rc.conf.d); either of those may
instead be a directory whose files are read in name order (rc.subr(8), rc.conf(5)). A later file wins. On
Linux the same variables live in /etc/hivectl.conf. ``HIVECTL_RC_CONF`` names other files of that format
(several separated by ``:``, read in that order; a directory stands for its files) and ``HIVECTL_VM_DIR``
overrides ``vm_dir`` (for tests and scripts).

rc.conf is *sourced* by sh, so unlike vm-bhyve's own files the last assignment wins and shell quoting
applies; this reader follows sh for simple assignments and ignores anything else.
"""

from __future__ import annotations

import os

from hivectl.errors import HivectlError
from hivectl.platforms import current_platform

# Every command reads these settings, ``list`` included: this module imports no ``re``, ``shlex``,
# ``pathlib`` or ``dataclasses`` on that path (benchmarks/README.md); shlex is imported for a value whose
# quoting is more than one plain or quoted word.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

DEFAULT_VM_DELAY = 2  # vm-bhyve's code default (its man page says 5; the code is what hosts run with)
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_SH_BLANKS = " \t\r\n"  # shlex's whitespace
_SH_QUOTING = frozenset("\"'\\")
_SH_SPECIAL = frozenset("\"'\\#") | frozenset(_SH_BLANKS)


def _assignment(line: str) -> tuple[str, str] | None:
    """``(name, raw value)`` of a line ``[blanks]NAME=VALUE`` with an sh variable name, else None."""
    name, equals, value = line.lstrip().partition("=")
    if not equals or not name or name[0] not in _NAME_START or not _NAME_CHARS.issuperset(name):
        return None
    return name, value


def first_word(value: str) -> str | None:
    """The first word of ``value`` as ``shlex.split(value, comments=True)`` reads it ("" if none), or None
    when that raises (an unclosed quote): sh would fail on such a line and it is ignored.

    The common spellings (``vm_dir="/vm"``, ``vm_enable=YES``, ``vm_list='a b'``) are read here; anything
    else goes to shlex itself (tests/test_hostconf_words.py compares both).
    """
    text = value.lstrip(_SH_BLANKS)
    if not text or text[0] == "#":
        return ""
    quote = text[0]
    if quote in "\"'":
        end = text.find(quote, 1)
        inner = text[1:end]
        tail = text[end + 1 :]
        # The tail must not be able to fail shlex's reading of the whole value (an unclosed quote later).
        if end > 0 and (quote == "'" or "\\" not in inner) and (
                not tail or (tail[0] in _SH_BLANKS and _SH_QUOTING.isdisjoint(tail))):
            return inner
    elif _SH_SPECIAL.isdisjoint(text):
        return text
    import shlex

    try:
        words = shlex.split(value, comments=True, posix=True)
    except ValueError:
        return None
    return words[0] if words else ""


def read_shell_assignments(path: Path | str) -> dict[str, str]:
    """Simple ``name=value`` assignments of an sh-sourced file; last one wins, quotes and comments handled."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except (FileNotFoundError, PermissionError):
        return values
    for line in text.splitlines():
        found = _assignment(line)
        if found is None:
            continue
        word = first_word(found[1])
        if word is not None:
            values[found[0]] = word
    return values


SERVICE = "vm"  # vm-bhyve's rc.d name: its settings file is rc.conf.d/vm
FREEBSD_FILES: tuple[str, ...] = ("/etc/rc.conf", "/etc/rc.conf.local", f"/etc/rc.conf.d/{SERVICE}",
                                  f"/usr/local/etc/rc.conf.d/{SERVICE}")


def _expand(entries: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Each entry itself, or the regular files of a directory in name order (rc.subr sources
    ``rc.conf.d/NAME/*``, a glob, so in the C locale's sorted order; dot files are left out as the glob
    leaves them). Strings, not ``Path`` objects: every command reads these files (see the imports)."""
    files: list[str] = []
    for entry in (os.fspath(e) for e in entries):
        if os.path.isdir(entry):
            try:
                names = sorted(os.listdir(entry))
            except OSError:
                continue
            files += [f"{entry}/{n}" for n in names if not n.startswith(".") and os.path.isfile(f"{entry}/{n}")]
        else:
            files.append(entry)
    return files


def expand(entries: list[Path]) -> list[Path]:
    """``_expand`` for ``Path`` objects."""
    from pathlib import Path

    return [Path(name) for name in _expand(entries)]


def _rc_names() -> list[str]:
    forced = os.environ.get("HIVECTL_RC_CONF")
    if forced:
        return _expand([p for p in forced.split(":") if p])
    if current_platform() == "freebsd":
        return _expand(FREEBSD_FILES)
    return ["/etc/hivectl.conf"]


def rc_files() -> list[Path]:
    """Files holding the host settings, in the order they are read (later ones win); the first is where
    a setting that no file holds yet is written (sysrc(8): the first of ``rc_conf_files``)."""
    from pathlib import Path

    return [Path(name) for name in _rc_names()]


class HostSettings:
    """The host-wide settings vm-bhyve keeps in rc.conf.

    A plain class rather than a dataclass (every command builds one; ``dataclasses`` costs more to
    import than ``list`` spends on a small host); same constructor, equality and repr as the dataclass was.
    """

    __slots__ = ("_positions", "disable_host_checks", "source", "vm_delay", "vm_dir", "vm_list")

    def __init__(self, vm_dir: str, vm_list: list[str] | None = None, vm_delay: int = DEFAULT_VM_DELAY,
                 source: str = "", disable_host_checks: bool = False) -> None:
        self.vm_dir = vm_dir
        self.vm_list: list[str] = [] if vm_list is None else vm_list
        self.vm_delay = vm_delay
        self.source = source
        self.disable_host_checks = disable_host_checks  # vm_disable_host_checks: skip drivers/hostchecks.py
        self._positions: dict[str, int] | None = None

    def _fields(self) -> tuple[str, list[str], int, str, bool]:
        return self.vm_dir, self.vm_list, self.vm_delay, self.source, self.disable_host_checks

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if isinstance(other, HostSettings) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (f"HostSettings(vm_dir={self.vm_dir!r}, vm_list={self.vm_list!r}, vm_delay={self.vm_delay!r}, "
                f"source={self.source!r}, disable_host_checks={self.disable_host_checks!r})")

    @property
    def zfs_dataset(self) -> str | None:
        """The dataset when ``vm_dir`` is written ``zfs:pool/dataset``."""
        return self.vm_dir[4:] if self.vm_dir.startswith("zfs:") else None

    def autostart_position(self, name: str) -> int | None:
        """1-based position in ``vm_list`` (vm-bhyve's AUTO column uses the last match), or None."""
        if self._positions is None:
            self._positions = {entry: index for index, entry in enumerate(self.vm_list, 1)}  # last match wins
        return self._positions.get(name)


def load_settings(vm_dir_override: str | None = None) -> HostSettings:
    """Read the settings; an unset ``vm_dir`` is an error that says where to set it."""
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    sources = _rc_names()
    for path in sources:
        found = read_shell_assignments(path)
        values.update(found)
        origin.update(dict.fromkeys(found, path))
    source = " + ".join(p for p in sources if os.path.exists(p)) or sources[0]
    vm_dir = vm_dir_override or os.environ.get("HIVECTL_VM_DIR") or values.get("vm_dir", "")
    if not vm_dir:
        raise HivectlError(f"vm_dir is not set: set it in {sources[0]} (vm_dir=\"/vm\" or "
                           "vm_dir=\"zfs:pool/vm\") or export HIVECTL_VM_DIR")
    delay_text = values.get("vm_delay", "")
    checks_text = values.get("vm_disable_host_checks", "")
    delay = DEFAULT_VM_DELAY
    disable_checks = False
    if delay_text or checks_text:
        from hivectl import validate  # only when set: its imports are not ``list``'s

        if delay_text:
            delay = validate.integer(origin["vm_delay"], "vm_delay", delay_text, 0, 3600)
        disable_checks = validate.yesno(checks_text)
    return HostSettings(vm_dir=vm_dir, vm_list=values.get("vm_list", "").split(), vm_delay=delay,
                        source=source, disable_host_checks=disable_checks)
