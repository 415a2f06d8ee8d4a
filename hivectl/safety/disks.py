"""The one disk rule both drivers, ``add``, ``create`` and ``disk resize`` apply (vm-bhyve's ``lib/vm-run``).

- ``file`` disks are names inside the guest directory: relative, no ``..``, and no symlink on the way (a
  link planted by a backup or by hand would have the hypervisor, or ``disk resize``, act on a host file);
  an existing one must be a regular file.
- ``zvol`` / ``sparse-zvol`` names are ZFS dataset names below the guest's dataset.
- ``custom`` is a full path (the administrator's explicit choice of a host device or file).
- ``9p`` is ``sharename=/host/dir``.

Before this module the bhyve driver confined file disks and the QEMU driver did not; now there is one check.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.errors import ConfigError
from hivectl.patterns import Pattern
from hivectl.safety import paths, values

Source = str | Path | None

_ZVOL_COMPONENT = Pattern(r"[A-Za-z0-9_.:-]+")  # zfs(8) dataset name characters, no '@' or '#'


def check_name(source: Source, key: str, name: str, *, zvol: bool = False, in_directory: bool = False) -> None:
    """The lexical part of the rule (no file system access); ``zvol``/``in_directory`` are what the disk's
    backing says (hivectl/model/backing.py: ``Backing.zvol``, ``Backing.in_directory``)."""
    values.plain_text(source, key, name)
    if not name:
        raise ConfigError(source, key, name, "a disk name cannot be empty")
    if zvol:
        parts = name.split("/")
        if any(not _ZVOL_COMPONENT.fullmatch(p) or p in (".", "..") for p in parts):
            raise ConfigError(source, key, name, "a zvol name is a ZFS dataset name below the guest's dataset "
                                                 "(letters, digits, '_.:-', components separated by '/')")
    elif in_directory and (name.startswith("/") or any(p in ("", ".", "..") for p in name.split("/"))):
        raise ConfigError(source, key, name, "a file disk is a name inside the guest directory; use "
                                             "diskN_dev=custom for a path elsewhere")


def file_disk(directory: Path, source: Source, key: str, name: str, *, must_exist: bool = False) -> Path:
    """A ``file`` disk's path, checked: inside ``directory``, no symlink, a regular file if it exists."""
    check_name(source, key, name, in_directory=True)
    return paths.confined(directory, name, source=source, key=key, value=name, must_exist=must_exist)
