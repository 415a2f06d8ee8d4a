"""The ``vm_dir`` layout vm-bhyve defined, read and written as it is (vm(8), ``lib/vm-datastore``).

```
$vm_dir/.config/system.conf   switches, datastores, settings      .config/null.iso
$vm_dir/.templates/*.conf     templates                            .iso/  .img/
$vm_dir/NAME/NAME.conf        one directory per guest (ZFS: dataset <vm_dir dataset>/NAME)
```

Extra datastores are ``datastore_list`` + ``path_NAME`` in system.conf: ``/dir``, ``zfs:pool/ds``, and
the ISO and image stores ``iso:/dir`` / ``img:/dir``. A guest is found by name across all datastores,
default first, then in ``datastore_list`` order (first hit wins, as in vm-bhyve).
"""

from __future__ import annotations

import os

from hivectl.errors import ConfigError, Conflict, HivectlError, NotFound
from hivectl.model.layout import GuestLayout, config_name
from hivectl.rcfile import RcFile, parse_text, read_text

# Every command builds a Store, ``list`` included: nothing here imports ``pathlib``, ``dataclasses`` or
# ``typing`` on that path (benchmarks/README.md). Paths are kept as strings and handed out as ``Path``
# objects by properties, which import pathlib when first used.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from hivectl.host.base import Host
    from hivectl.hostconf import HostSettings
    from hivectl.model.guest import GuestConfig


def _path(text: str) -> Path:
    from pathlib import Path

    return Path(text)


class Datastore:
    """Where guests (or ISOs, or images) live. A value: equal and hashable by its fields."""

    __slots__ = ("dataset", "directory", "kind", "name", "spec")

    def __init__(self, name: str, kind: str, spec: str, path: Path | str, dataset: str | None = None) -> None:
        self.name = name
        self.kind = kind  # "directory", "zfs", "iso", "img"
        self.spec = spec  # as written in system.conf (or vm_dir)
        self.directory = os.fspath(path)  # the path as a string (``list`` needs no Path object)
        self.dataset = dataset

    def _key(self) -> tuple[str, str, str, str, str | None]:
        return self.name, self.kind, self.spec, self.directory, self.dataset

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Datastore) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Datastore(name={self.name!r}, kind={self.kind!r}, spec={self.spec!r}, "
                f"path={self.directory!r}, dataset={self.dataset!r})")

    @property
    def path(self) -> Path:
        return _path(self.directory)

    @property
    def holds_guests(self) -> bool:
        return self.kind in ("directory", "zfs")


class GuestRef:
    """A guest found on disk: its name, datastore and directory. A value: equal and hashable by its fields.

    ``entry`` is the directory (and last dataset component) when that is not the name: a guest being built
    under a hidden staging name (``hivectl/model/staging.py``) is a ``GuestRef`` with its own name, so its
    config is ``NAME.conf`` from the start and only the publishing rename changes its path.
    """

    __slots__ = ("datastore", "entry", "name")

    def __init__(self, name: str, datastore: Datastore, entry: str = "") -> None:
        self.name = name
        self.datastore = datastore
        self.entry = entry

    def _key(self) -> tuple[str, Datastore, str]:
        return self.name, self.datastore, self.entry

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, GuestRef) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"GuestRef(name={self.name!r}, datastore={self.datastore!r}, entry={self.entry!r})"

    def staged(self, entry: str) -> GuestRef:
        """The same guest under the hidden directory/dataset name ``entry``."""
        return GuestRef(self.name, self.datastore, entry)

    @property
    def directory(self) -> Path:
        return self.datastore.path / (self.entry or self.name)

    @property
    def conf_path(self) -> Path:
        return self.layout.config

    @property
    def dataset(self) -> str | None:
        return f"{self.datastore.dataset}/{self.entry or self.name}" if self.datastore.dataset else None

    @property
    def layout(self) -> GuestLayout:
        """Every file of this guest (``hivectl/model/layout.py``)."""
        return GuestLayout(self.directory, self.name, self.dataset)

    def config(self) -> GuestConfig:
        from hivectl.model.guest import GuestConfig  # not at the top: ``list`` reads no key table

        return GuestConfig.load(self.conf_path, self.name)


class Leftover:
    """A hidden staging or tombstone entry of guest ``name`` (its dataset too, on ZFS)."""

    __slots__ = ("dataset", "kind", "name", "path")

    def __init__(self, kind: str, name: str, path: Path, dataset: str | None) -> None:
        self.kind = kind  # "staging" or "tombstone"
        self.name = name
        self.path = path
        self.dataset = dataset

    def _key(self) -> tuple[str, str, Path, str | None]:
        return self.kind, self.name, self.path, self.dataset

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Leftover) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Leftover(kind={self.kind!r}, name={self.name!r}, path={self.path!r}, dataset={self.dataset!r})"


class Store:
    """Access to one host's ``vm_dir`` and its datastores."""

    def __init__(self, settings: HostSettings, host: Host | None = None, *,
                 make_host: Callable[[], Host] | None = None) -> None:
        """``host``, or ``make_host`` to build it when first needed (``list`` on directories needs none)."""
        if (host is None) == (make_host is None):
            raise TypeError("Store needs a host or a make_host function, not both")
        self.settings = settings
        self._host = host
        self._make_host = make_host
        self._mounts: dict[str, str] | None = None
        dataset = settings.zfs_dataset
        self.root_directory = self._zfs_mountpoint(dataset) if dataset else settings.vm_dir
        self.default = Datastore("default", "zfs" if dataset else "directory", settings.vm_dir,
                                 self.root_directory, dataset)

    @property
    def host(self) -> Host:
        if self._host is None:
            assert self._make_host is not None
            self._host = self._make_host()
        return self._host

    @property
    def root(self) -> Path:
        return _path(self.root_directory)

    # -- paths -------------------------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        return self.root / ".config"

    @property
    def system_conf_path(self) -> Path:
        return self.config_dir / "system.conf"

    @property
    def templates_dir(self) -> Path:
        return self.root / ".templates"

    def system(self) -> RcFile:
        """``.config/system.conf`` for reading or editing."""
        return RcFile.load(self.system_conf_path)

    def require_initialised(self) -> None:
        if not self.root.is_dir():
            raise HivectlError(f"vm_dir {self.root} does not exist: create it (or the ZFS dataset) and run "
                               "'hivectl init'")

    # -- ZFS ---------------------------------------------------------------------------------------
    def _zfs_mountpoint(self, dataset: str) -> str:
        """Mountpoint of a dataset, from one ``zfs list`` of all mounted filesystems (cached)."""
        if self._mounts is None:
            out = self.host.run(["zfs", "list", "-H", "-o", "name,mountpoint", "-t", "filesystem"]).stdout
            self._mounts = {}
            for line in out.splitlines():
                parts = line.split("\t")
                if len(parts) == 2 and parts[1].startswith("/"):
                    self._mounts[parts[0]] = parts[1]
        if dataset not in self._mounts:
            raise HivectlError(f"ZFS dataset {dataset} does not exist or is not mounted")
        return self._mounts[dataset]

    # -- datastores --------------------------------------------------------------------------------
    def datastores(self, system: RcFile | None = None) -> list[Datastore]:
        """Every datastore, the default first, then ``datastore_list`` order."""
        if system is not None:
            values = system.values
        else:  # read only: no RcFile (and no Path) for every ``list``
            try:
                values = parse_text(read_text(f"{self.root_directory}/.config/system.conf"))
            except FileNotFoundError:
                values = {}
        result = [self.default]
        for name in values.get("datastore_list", "").split():
            spec = values.get(f"path_{name}", "")
            result.append(self.parse_datastore(name, spec))
        return result

    def parse_datastore(self, name: str, spec: str) -> Datastore:
        if spec.startswith("zfs:"):
            dataset = spec[4:]
            return Datastore(name, "zfs", spec, self._zfs_mountpoint(dataset), dataset)
        for prefix in ("iso", "img"):
            if spec.startswith(prefix + ":"):
                return Datastore(name, prefix, spec, spec[len(prefix) + 1 :])
        if not spec.startswith("/"):
            raise ConfigError(self.system_conf_path, f"path_{name}", spec,
                              "expected /directory, zfs:pool/dataset, iso:/dir or img:/dir")
        return Datastore(name, "directory", spec, spec)

    def datastore(self, name: str) -> Datastore:
        for store in self.datastores():
            if store.name == name:
                return store
        raise NotFound(f"datastore {name} does not exist (see 'hivectl datastore list')")

    # -- guests ------------------------------------------------------------------------------------
    def iter_guests(self, datastores: list[Datastore] | None = None) -> Iterator[GuestRef]:
        """Every guest directory with a ``NAME/NAME.conf``, datastore by datastore, names sorted."""
        for store in datastores or self.datastores():
            if not store.holds_guests:
                continue
            try:
                entries = sorted(e.name for e in os.scandir(store.path)
                                 if e.name[0] != "." and e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                continue
            for entry in entries:
                if os.path.isfile(os.path.join(store.path, entry, config_name(entry))):
                    yield GuestRef(entry, store)

    def find(self, name: str) -> GuestRef | None:
        """The guest called ``name`` in the first datastore that has it.

        A guest directory that is a symlink is refused (``UnsafePath``), not followed: its run-time files
        and what ``destroy`` removes would be outside vm_dir (hivectl/safety/paths.py).
        """
        from hivectl.safety.paths import real_directory

        for store in self.datastores():
            if store.holds_guests and (store.path / name / config_name(name)).is_file():
                real_directory(store.path / name)
                return GuestRef(name, store)
        return None

    def leftovers(self, name: str | None = None, datastore: Datastore | None = None) -> list[Leftover]:
        """Staging and tombstone entries (``hivectl/model/staging.py``) left by killed or failed commands.

        Those of guest ``name`` in every datastore, plus every one in ``datastore``. Whether one is still
        in use (its maker alive) is decided when it is collected (``hivectl.staging.Collect``).
        """
        from hivectl.model import staging

        found: list[Leftover] = []
        for store in self.datastores():
            if not store.holds_guests:
                continue
            try:
                entries = sorted(e for e in os.listdir(store.path) if e.startswith(".hivectl-"))
            except FileNotFoundError:
                continue
            for entry in entries:
                parsed = staging.parse(entry)
                if parsed is None or not (parsed[1] == name or store == datastore):
                    continue
                dataset = f"{store.dataset}/{entry}" if store.dataset else None
                found.append(Leftover(parsed[0], parsed[1], store.path / entry, dataset))
        return found

    def require_free(self, name: str, hint: str = "") -> None:
        """Refuse a guest name that is taken in any datastore (names are unique host-wide)."""
        other = self.find(name)
        if other is not None:
            raise Conflict(f"guest {name} already exists in datastore {other.datastore.name}{hint}")

    def get(self, name: str) -> GuestRef:
        """Like ``find`` but the name is validated first and a missing guest is an error."""
        from hivectl import validate

        validate.guest_name(None, "name", name)
        ref = self.find(name)
        if ref is None:
            raise NotFound(f"guest {name} does not exist")
        return ref

    # -- templates, ISO and image stores ------------------------------------------------------------
    def templates(self) -> list[str]:
        try:
            return sorted(p.stem for p in self.templates_dir.glob("*.conf"))
        except FileNotFoundError:
            return []

    def template_path(self, name: str) -> Path:
        from hivectl import validate

        validate.name(None, "template", name, "template name")
        path = self.templates_dir / f"{name}.conf"
        if not path.is_file():
            known = ", ".join(self.templates()) or "none; run 'hivectl init'"
            raise NotFound(f"template {name} does not exist in {self.templates_dir} (known: {known})")
        return path

    def media_stores(self, kind: str) -> list[Datastore]:
        """The default ``.iso``/``.img`` directory and every ``iso:``/``img:`` datastore."""
        default = Datastore("default", kind, f"{kind}:{self.root / ('.' + kind)}", self.root / f".{kind}")
        return [default, *[d for d in self.datastores() if d.kind == kind]]
