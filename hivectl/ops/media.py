"""Install media and cloud images (``iso``, ``img``) and restores, as plans for ``--dry-run`` and the API.

A download or a restore streams data in-process (``hivectl.storage.download``, ``hivectl.storage.backup``),
so their dry runs show the equivalent FreeBSD command an administrator would type (fetch(1), tar(1),
``zfs recv``), after every check that can be made without changing anything: the target store exists,
the guest name is free, the archive's header is a hivectl backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hivectl.errors import UsageError
from hivectl.store import GuestRef, Store


@dataclass(frozen=True)
class DownloadRequest:
    """``hivectl iso URL`` / ``hivectl img URL``: ``kind`` is ``iso`` or ``img``."""

    kind: str
    url: str
    datastore: str | None = None
    sha256: str | None = None
    sums: str | None = None


def plan_download(store: Store, request: DownloadRequest) -> list[list[str]]:
    """The download as fetch(1) would do it: ``fetch -o STORE/FILE URL`` (then the checksum check)."""
    from hivectl.storage import download, media

    target = media.target_store(store, request.kind, request.datastore)
    path = target.path / download.url_file_name(request.url)
    lines = [["fetch", "-o", str(path), request.url]]
    if request.sha256 or request.sums:
        lines.append(["sha256", "-c", request.sha256 or f"(from {request.sums})", str(path)])
    return lines


@dataclass(frozen=True)
class RestoreRequest:
    """``hivectl restore [-d DATASTORE] FILE [NAME]``."""

    file: str
    name: str | None = None
    datastore: str | None = None


def plan_restore(store: Store, request: RestoreRequest) -> list[list[str]]:
    """What a restore would run, checked as far as reading the backup's header allows."""
    from hivectl import validate
    from hivectl.storage.backup import read_header

    source = Path(request.file)
    if str(source) == "-":
        raise UsageError("restore --dry-run needs a FILE (standard input cannot be read twice)")
    header = read_header(source)
    target = store.datastore(request.datastore or "default")
    if not target.holds_guests:
        raise UsageError(f"datastore {target.name} is an {target.kind} store; guests cannot live there")
    guest = validate.guest_name(None, "NAME", request.name or str(header["guest"]), new=True)
    store.require_free(guest, "; restore under another NAME or destroy it first")
    ref = GuestRef(guest, target)
    if header.get("kind") == "zfs":
        if ref.dataset is None:
            raise UsageError(f"{source} holds a ZFS guest; restore it into a ZFS datastore (-d)")
        return [["zfs", "recv", ref.dataset, "<", str(source)]]
    if ref.dataset is not None:
        raise UsageError(f"{source} holds a guest of a directory datastore; restore it into one (-d)")
    return [["tar", "-xSf", str(source), "-C", str(ref.directory)]]
