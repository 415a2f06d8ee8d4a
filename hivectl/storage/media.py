"""The ISO and cloud-image stores: ``vm_dir/.iso``, ``vm_dir/.img`` and ``iso:``/``img:`` datastores."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hivectl.errors import NotFound, UsageError
from hivectl.store import Datastore, Store


@dataclass(frozen=True)
class MediaFile:
    datastore: str
    name: str
    size: int


def list_media(store: Store, kind: str) -> list[MediaFile]:
    """Regular files of every store of ``kind`` (``iso`` or ``img``); partial downloads and dot files are
    left out."""
    result = []
    for media in store.media_stores(kind):
        try:
            entries = sorted(os.scandir(media.path), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(".part"):
                continue
            if entry.is_file(follow_symlinks=True):
                result.append(MediaFile(media.name, entry.name, entry.stat().st_size))
    return result


def target_store(store: Store, kind: str, name: str | None) -> Datastore:
    """The store a download goes to: the default one, or the named ``iso:``/``img:`` datastore."""
    stores = store.media_stores(kind)
    if name is None or name == "default":
        return stores[0]
    for media in stores:
        if media.name == name:
            return media
    others = [d.name for d in store.datastores() if d.name == name]
    if others:
        raise UsageError(f"datastore {name} is not an {kind} store (add one with 'hivectl datastore add')")
    raise NotFound(f"{kind} store {name} does not exist")
