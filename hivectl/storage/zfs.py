"""Reading ZFS state for a guest: its datasets, zvols and snapshots (one ``zfs list`` each).

Only queries live here; changes are planned as ``Run`` actions by the modules that need them, so that
``--dry-run`` shows the exact ``zfs`` command lines. Names are validated before they reach ``zfs``:
guest names by ``validate.name``, snapshot names by ``snapshot_name`` (ZFS allows ``:`` there, which
vm-bhyve's default ``YYYY-MM-DD-HH:MM:SS`` names use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from hivectl import validate
from hivectl.errors import ConfigError, HivectlError
from hivectl.host.base import Host
from hivectl.store import GuestRef

_SNAP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


@dataclass(frozen=True)
class Snapshot:
    name: str  # the part after '@'
    creation: int  # seconds since the epoch
    used: int  # bytes

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "creation": datetime.fromtimestamp(self.creation).isoformat(timespec="seconds"),
                "used": self.used}


def snapshot_name(value: str, key: str = "snapshot") -> str:
    if not _SNAP_RE.fullmatch(value) or ".." in value:
        raise ConfigError(None, key, value, "a snapshot name starts with a letter or digit and holds only letters, "
                                            "digits, '_', '.', ':' and '-'")
    return value


def split_spec(spec: str, need_snapshot: bool = False) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@SNAP``, both parts validated."""
    name, at, snap = spec.partition("@")
    validate.guest_name(None, "name", name)
    if at:
        return name, snapshot_name(snap)
    if need_snapshot:
        raise ConfigError(None, "NAME@SNAPSHOT", spec, "a snapshot name is required (NAME@SNAPSHOT)")
    return name, None


def default_snapshot_name(now: datetime | None = None) -> str:
    """vm-bhyve's default: ``YYYY-MM-DD-HH:MM:SS`` in local time."""
    return (now or datetime.now()).strftime("%Y-%m-%d-%H:%M:%S")


def require_zfs(ref: GuestRef, what: str) -> str:
    """The guest's dataset, or a one-line error saying that ``what`` needs ZFS."""
    if ref.dataset is None:
        raise HivectlError(f"{what} needs a ZFS datastore; {ref.name} is in {ref.datastore.name} "
                           f"({ref.datastore.spec}), a plain directory")
    return ref.dataset


def datasets(host: Host, dataset: str) -> list[str]:
    """The dataset and every filesystem and volume below it, parents first."""
    out = host.run(["zfs", "list", "-H", "-o", "name", "-r", "-t", "filesystem,volume", dataset]).stdout
    return [line for line in out.splitlines() if line]


def origins(host: Host, dataset: str) -> dict[str, str | None]:
    """The dataset and every filesystem and volume below it (parents first), each with the snapshot it was
    cloned from (``origin``; None for a dataset that is no clone)."""
    out = host.run(["zfs", "list", "-H", "-o", "name,origin", "-r", "-t", "filesystem,volume", dataset]).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        name, _, origin = line.partition("\t")
        if name:
            found[name] = None if origin in ("", "-") else origin
    return found


def snapshots(host: Host, dataset: str) -> list[Snapshot]:
    """Snapshots of ``dataset`` itself (not of its children), oldest first.

    Read with ``zfs get -r -p`` rather than ``zfs list -p -d 1``: older ZFS (zfs-fuse on Linux) has neither
    ``list -p`` nor exact numbers in ``list``, while ``get -H -p -r`` works the same on every ZFS.
    """
    out = host.run(["zfs", "get", "-H", "-p", "-r", "-o", "name,property,value", "creation,used", dataset]).stdout
    found: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].split("@", 1)[0] != dataset or "@" not in parts[0]:
            continue
        found.setdefault(parts[0], {})[parts[1]] = int(parts[2]) if parts[2].isdigit() else 0
    result = [Snapshot(name.split("@", 1)[1], values.get("creation", 0), values.get("used", 0))
              for name, values in found.items()]
    result.sort(key=lambda snap: snap.creation)
    return result


def has_snapshot(host: Host, dataset: str, snap: str) -> bool:
    return any(s.name == snap for s in snapshots(host, dataset))


def volsize(host: Host, volume: str) -> int:
    out = host.run(["zfs", "get", "-H", "-p", "-o", "value", "volsize", volume]).stdout.strip()
    if not out.isdigit():
        raise HivectlError(f"zfs get volsize {volume}: unexpected answer {out!r}")
    return int(out)
