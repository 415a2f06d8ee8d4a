"""MAC addresses chosen where no concurrent command can choose the same one.

A MAC must be unique among every guest of the host (two guests with one MAC on a switch break each
other's traffic). ``create`` and ``add -d network`` choose one by looking at the MACs of every guest;
each command locks only the one config it writes, so two of them editing *different* guests could both
see the same MAC free and both take it. The choice is therefore made when the plan is applied, under one
host-wide lock (``vm_dir/.config/.macs.lock``, ``hivectl.safety.filelock``), and the config naming the
MAC is written before that lock is released. The scan includes guests still being built under a staging
name (``hivectl/model/staging.py``): a ``create`` in progress has written its config there.

Lock order: the MAC lock first, then a guest config's lock (``add -d network``); nothing takes them the
other way round, so they cannot deadlock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hivectl.errors import Conflict
from hivectl.host.base import Host
from hivectl.model.identity import new_mac, taken_macs
from hivectl.model.staging import STAGING_PREFIX
from hivectl.plan import Action
from hivectl.rcfile import RcFile, atomic_write, read_values
from hivectl.safety.filelock import locked
from hivectl.store import Store


def lock_path(store: Store) -> Path:
    """The path whose sibling ``.macs.lock`` serialises every MAC choice of this vm_dir."""
    return store.config_dir / "macs"


@contextlib.contextmanager
def choosing(store: Store) -> Iterator[None]:
    """Hold the host-wide MAC lock (re-entrant within a process)."""
    with locked(lock_path(store)):
        yield


def macs_in_use(store: Store) -> set[str]:
    """Every MAC configured by a guest, published or still being built under a staging name (lower case)."""
    macs = taken_macs(store.iter_guests())
    for datastore in store.datastores():
        if not datastore.holds_guests:
            continue
        try:
            entries = [e for e in os.scandir(datastore.path) if e.name.startswith(STAGING_PREFIX)]
        except FileNotFoundError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                for conf in os.scandir(entry.path):
                    if conf.name.endswith(".conf") and conf.is_file(follow_symlinks=False):
                        macs |= {value.lower() for key, value in read_values(Path(conf.path)).items()
                                 if key.startswith("network") and key.endswith("_mac") and value}
    return macs


def mac_keys(conf: RcFile) -> list[str]:
    return [key for key, value in conf.values.items() if key.startswith("network") and key.endswith("_mac") and value]


@dataclass
class WriteNewConfig(Action):
    """Write a new guest's config (in its staging directory) with MACs no other guest has, checked under
    the MAC lock when applied. A MAC taken meanwhile is chosen again; one the plan already wrote elsewhere
    (``fixed``: the cloud-init seed's network-config names it) refuses instead, so nothing disagrees."""

    store: Store
    path: Path
    conf: RcFile
    shown_as: list[str]
    fixed: bool = False
    mode: int = 0o644
    _created: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return list(self.shown_as)

    def apply(self, host: Host) -> None:
        with choosing(self.store):
            taken = macs_in_use(self.store)
            for key in mac_keys(self.conf):
                mac = self.conf.values[key].lower()
                if mac in taken:
                    if self.fixed:
                        raise Conflict(f"{self.path.name}: {key}={mac} was taken by another guest meanwhile "
                                       "(its cloud-init seed names it); nothing was created, run the command again")
                    mac = new_mac(taken)
                    self.conf.set(key, mac)
                taken.add(mac)
            self._created = not self.path.exists()
            atomic_write(self.path, self.conf.text(), self.mode)

    def undo(self, host: Host) -> None:
        if self._created:
            self.path.unlink(missing_ok=True)


@dataclass
class UnderMacLock(Action):
    """Apply ``action`` (an edit that chooses a MAC) holding the MAC lock, so the choice and the write of
    the config naming it cannot interleave with another guest's."""

    store: Store
    action: Action

    def argv(self) -> list[str]:
        return self.action.argv()

    def argvs(self) -> list[list[str]]:
        return self.action.argvs()

    def apply(self, host: Host) -> None:
        with choosing(self.store):
            self.action.apply(host)

    def undo(self, host: Host) -> None:
        self.action.undo(host)
