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
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from hivectl import validate
from hivectl.errors import HivectlError
from hivectl.platforms import current_platform

_ASSIGN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)")
DEFAULT_VM_DELAY = 2  # vm-bhyve's code default (its man page says 5; the code is what hosts run with)


def read_shell_assignments(path: Path) -> dict[str, str]:
    """Simple ``name=value`` assignments of an sh-sourced file; last one wins, quotes and comments handled."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, PermissionError):
        return values
    for line in text.splitlines():
        match = _ASSIGN.match(line)
        if not match:
            continue
        try:
            words = shlex.split(match.group(2), comments=True, posix=True)
        except ValueError:
            continue
        values[match.group(1)] = words[0] if words else ""
    return values


SERVICE = "vm"  # vm-bhyve's rc.d name: its settings file is rc.conf.d/vm
FREEBSD_FILES = (Path("/etc/rc.conf"), Path("/etc/rc.conf.local"), Path("/etc/rc.conf.d") / SERVICE,
                 Path("/usr/local/etc/rc.conf.d") / SERVICE)


def expand(entries: list[Path]) -> list[Path]:
    """Each entry itself, or the regular files of a directory in name order (rc.subr sources
    ``rc.conf.d/NAME/*``, a glob, so in the C locale's sorted order; dot files are left out as the glob
    leaves them)."""
    files: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            try:
                names = sorted(os.listdir(entry))
            except OSError:
                continue
            files += [entry / n for n in names if not n.startswith(".") and (entry / n).is_file()]
        else:
            files.append(entry)
    return files


def rc_files() -> list[Path]:
    """Files holding the host settings, in the order they are read (later ones win); the first is where
    a setting that no file holds yet is written (sysrc(8): the first of ``rc_conf_files``)."""
    forced = os.environ.get("HIVECTL_RC_CONF")
    if forced:
        return expand([Path(p) for p in forced.split(":") if p])
    if current_platform() == "freebsd":
        return expand(list(FREEBSD_FILES))
    return [Path("/etc/hivectl.conf")]


@dataclass
class HostSettings:
    """The host-wide settings vm-bhyve keeps in rc.conf."""

    vm_dir: str
    vm_list: list[str] = field(default_factory=list)
    vm_delay: int = DEFAULT_VM_DELAY
    source: str = ""
    disable_host_checks: bool = False  # vm_disable_host_checks: skip drivers/hostchecks.py, as vm-bhyve does
    _positions: dict[str, int] | None = field(default=None, repr=False, compare=False)

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
    origin: dict[str, Path] = {}
    sources = rc_files()
    for path in sources:
        found = read_shell_assignments(path)
        values.update(found)
        origin.update(dict.fromkeys(found, path))
    source = " + ".join(str(p) for p in sources if p.exists()) or str(sources[0])
    vm_dir = vm_dir_override or os.environ.get("HIVECTL_VM_DIR") or values.get("vm_dir", "")
    if not vm_dir:
        raise HivectlError(f"vm_dir is not set: set it in {sources[0]} (vm_dir=\"/vm\" or "
                           "vm_dir=\"zfs:pool/vm\") or export HIVECTL_VM_DIR")
    delay_text = values.get("vm_delay", "")
    delay = DEFAULT_VM_DELAY
    if delay_text:
        delay = validate.integer(origin["vm_delay"], "vm_delay", delay_text, 0, 3600)
    return HostSettings(vm_dir=vm_dir, vm_list=values.get("vm_list", "").split(), vm_delay=delay,
                        source=source, disable_host_checks=validate.yesno(values.get("vm_disable_host_checks", "")))
