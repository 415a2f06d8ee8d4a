"""Host-level settings: ``vm_dir``, ``vm_list``, ``vm_delay`` (vm-bhyve's rc.conf variables).

On FreeBSD they live in /etc/rc.conf (and /etc/rc.conf.local), exactly where vm-bhyve reads them, so a
host switches without migration. On Linux the same variables live in /etc/hivectl.conf. ``HIVECTL_RC_CONF``
names another file of that format and ``HIVECTL_VM_DIR`` overrides ``vm_dir`` (for tests and scripts).

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


def rc_files() -> list[Path]:
    """Files holding the host settings, in the order they are read (later ones win)."""
    forced = os.environ.get("HIVECTL_RC_CONF")
    if forced:
        return [Path(forced)]
    if current_platform() == "freebsd":
        return [Path("/etc/rc.conf"), Path("/etc/rc.conf.local")]
    return [Path("/etc/hivectl.conf")]


@dataclass
class HostSettings:
    """The host-wide settings vm-bhyve keeps in rc.conf."""

    vm_dir: str
    vm_list: list[str] = field(default_factory=list)
    vm_delay: int = DEFAULT_VM_DELAY
    source: str = ""
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
    sources = rc_files()
    for path in sources:
        values.update(read_shell_assignments(path))
    source = " + ".join(str(p) for p in sources)
    vm_dir = vm_dir_override or os.environ.get("HIVECTL_VM_DIR") or values.get("vm_dir", "")
    if not vm_dir:
        raise HivectlError(f"vm_dir is not set: set it in {sources[0]} (vm_dir=\"/vm\" or "
                           "vm_dir=\"zfs:pool/vm\") or export HIVECTL_VM_DIR")
    delay_text = values.get("vm_delay", "")
    delay = DEFAULT_VM_DELAY
    if delay_text:
        delay = validate.integer(source, "vm_delay", delay_text, 0, 3600)
    return HostSettings(vm_dir=vm_dir, vm_list=values.get("vm_list", "").split(), vm_delay=delay,
                        source=source)
