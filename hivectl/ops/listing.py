"""``list`` and ``info``: what guests exist and what they are doing.

``list`` must stay fast on hosts with a thousand guests: one directory scan per datastore, one small
file read per guest, a few ``stat`` calls, and no process per guest (vm-bhyve forks ~10 per guest).
"""

from __future__ import annotations

import os

from hivectl.model.layout import RUN_LOCK, config_name, suspend_name
from hivectl.rcfile import parse_text

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

    from hivectl.model.guest import GuestConfig
    from hivectl.store import GuestRef, Store

_READ_SIZE = 1 << 16  # a guest config is a few hundred bytes; longer ones are read in more calls


class Row:
    """One line of ``list``. A plain slotted class, not a dataclass: a thousand are built per ``list``."""

    __slots__ = ("auto", "cpu", "datastore", "loader", "memory", "name", "pid", "state", "tags", "vnc")

    def __init__(self, name: str, datastore: str, loader: str, cpu: str, memory: str, vnc: str,
                 auto: int | None, state: str, pid: int | None, tags: list[str]) -> None:
        self.name = name
        self.datastore = datastore
        self.loader = loader
        self.cpu = cpu
        self.memory = memory
        self.vnc = vnc
        self.auto = auto
        self.state = state
        self.pid = pid
        self.tags = tags

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value object, like an eq dataclass

    def __repr__(self) -> str:
        return f"Row({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datastore": self.datastore, "loader": self.loader, "cpu": self.cpu,
                "memory": self.memory, "vnc": self.vnc or None, "auto": self.auto is not None,
                "auto_order": self.auto, "state": self.state, "pid": self.pid, "tags": self.tags}

    @property
    def auto_label(self) -> str:
        return f"Yes [{self.auto}]" if self.auto is not None else "No"


# ``list``'s columns in vm-bhyve 1.8's order (its lib/vm-core ``core::list``: TAGS last, after STATE), each
# with the keys of the JSON row that carry it; ``list -o`` picks among them.
COLUMNS = ("NAME", "DATASTORE", "LOADER", "CPU", "MEMORY", "VNC", "AUTO", "STATE", "TAGS")
JSON_KEYS = {"NAME": ("name",), "DATASTORE": ("datastore",), "LOADER": ("loader",), "CPU": ("cpu",),
             "MEMORY": ("memory",), "VNC": ("vnc",), "AUTO": ("auto", "auto_order"), "STATE": ("state", "pid"),
             "TAGS": ("tags",)}


def select_columns(text: str) -> tuple[str, ...]:
    """``-o name,state,tags``: column names, comma-separated, any case, in the order given; an unknown
    or empty one is refused in one line that lists the valid names."""
    from hivectl.errors import UsageError

    chosen = tuple(word.strip().upper() for word in text.split(","))
    for word in chosen:
        if word not in JSON_KEYS:
            shown = repr(word.lower()) if word else "an empty name"
            raise UsageError(f"list -o {text}: unknown column {shown}; valid columns: "
                             f"{','.join(c.lower() for c in COLUMNS)}")
    return chosen


def cells(row: Row, columns: tuple[str, ...]) -> list[str]:
    """The texts of ``columns`` for one row, as the table shows them (``-`` for no VNC and no tags)."""
    text = {"NAME": row.name, "DATASTORE": row.datastore, "LOADER": row.loader, "CPU": row.cpu,
            "MEMORY": row.memory, "VNC": row.vnc or "-", "AUTO": row.auto_label, "STATE": row.state,
            "TAGS": ",".join(row.tags) or "-"}
    return [text[c] for c in columns]


def json_columns(row: Row, columns: tuple[str, ...]) -> dict[str, Any]:
    """The JSON row restricted to ``columns`` (``list -o ... --json``)."""
    full = row.as_json()
    return {key: full[key] for c in columns for key in JSON_KEYS[c]}


def _read(path: str) -> str:
    """A config's text as ``rcfile.read_text`` gives it (no newline translation), with two system calls.

    ``open()`` in text mode adds an ``fstat``, an ``ioctl`` and a decoder object per file; ``list`` reads a
    thousand files (benchmarks/README.md).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) == _READ_SIZE:
            chunks = [data]
            while len(chunks[-1]) == _READ_SIZE:
                chunks.append(os.read(fd, _READ_SIZE))
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data.decode("utf-8", "surrogateescape")


def _scan(directory: str) -> Iterator[tuple[str, str]]:
    """(name, config text) of every guest in one datastore directory, sorted by name.

    Written with ``os`` calls on strings rather than pathlib: this is the hot loop of ``list`` and runs a
    thousand times on a big host (one ``open`` and one ``read`` per guest, no ``stat`` before them).
    """
    try:
        # d_type from the directory read itself (no stat per entry): a symlinked "guest" is not one, since
        # its run-time files would live outside vm_dir (hivectl/safety/paths.py); 'start' refuses it too.
        with os.scandir(directory) as scan:
            names = sorted(entry.name for entry in scan if entry.name[0] != "." and not entry.is_symlink())
    except FileNotFoundError:
        return
    for name in names:
        path = f"{directory}/{name}/{config_name(name)}"
        try:
            yield name, _read(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except PermissionError:
            # A config only root may read (one holding a vnc_password is 0600): a non-root ``list`` still
            # shows the guest and its state, without the values it cannot read. (A directory it cannot
            # even look into, such as lost+found, is not known to be a guest and is skipped.)
            if os.path.exists(path):
                yield name, ""


def list_guests(store: Store, running_only: bool = False, tag: str | None = None) -> list[Row]:
    """Every guest's row, datastore by datastore, names sorted.

    A guest without ``run.lock`` or a saved state is Stopped without further reading; only the others
    import and consult ``hivectl.runtime`` (its process-identity checks cost imports a stopped host
    does not need).
    """
    rows = []
    position = store.settings.autostart_position
    # access(2), not stat: a missing file is the common answer, and os.stat would raise (and build) an
    # exception object for each of them.
    access, present = os.access, os.F_OK
    for datastore in store.datastores():
        if not datastore.holds_guests:
            continue
        base = datastore.directory
        for name, text in _scan(base):
            values = parse_text(text)
            get = values.get
            tags = get("tags", "").split()
            if tag is not None and tag not in tags:
                continue
            directory = f"{base}/{name}"
            state, pid, vnc = "Stopped", None, ""
            if access(f"{directory}/{RUN_LOCK}", present) or access(f"{directory}/{suspend_name(name)}", present):
                state, pid, vnc = _live_state(directory, name, get("graphics", ""))
            elif running_only:
                continue
            if running_only and state in ("Stopped", "Suspended"):
                continue
            rows.append(Row(name, datastore.name, get("loader") or "none", get("cpu", ""), get("memory", ""),
                            vnc, position(name), state, pid, tags))
    return rows


def _live_state(directory: str, name: str, graphics: str) -> tuple[str, int | None, str]:
    """(state label, pid, VNC address) of a guest that has a lock or a saved state."""
    from pathlib import Path

    from hivectl.runtime import console_lines, guest_state
    from hivectl.validate import yesno

    state = guest_state(Path(directory), name)
    vnc = ""
    if state.running and yesno(graphics):
        vnc = console_lines(Path(directory)).get("vnc", "")
    return state.label(), state.pid, vnc


def _file_sizes(path: Path | str) -> tuple[int | None, int | None]:
    """Apparent size and bytes really allocated (sparse files use far less)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_blocks * 512


def guest_info(store: Store, ref: GuestRef) -> dict[str, Any]:
    """Everything worth knowing about one guest, as plain data (rendered as YAML or JSON by the CLI)."""
    from pathlib import Path

    from hivectl.errors import HivectlError
    from hivectl.model.guest import GuestConfig  # here, not at the top: ``list`` needs no key table
    from hivectl.runtime import console_lines, guest_state, read_json
    from hivectl.validate import memory

    layout = ref.layout

    config = GuestConfig.load(layout.config, ref.name)
    state = guest_state(ref.directory, ref.name)
    mem_text = config.memory
    try:
        mem_bytes: int | None = memory(ref.conf_path, "memory", mem_text) if mem_text else None
    except HivectlError:
        mem_bytes = None
    disks = []
    for disk in config.disks:
        try:
            path: str | None = layout.disk_path(disk.dev, disk.name)
        except LookupError:  # a zvol of a guest on a plain directory: it cannot exist (config problem)
            path = None
        if path is None:
            size, used = None, None
        else:
            size, used = _file_sizes(store.host.devpath(path) if path.startswith("/dev/") else Path(path))
        disks.append({"index": disk.index, "type": disk.type, "dev": disk.dev, "name": disk.name, "path": path,
                      "options": disk.opts or None, "slot": disk.slot or None, "size": size, "used": used})
    nics = [{"index": n.index, "type": n.type, "switch": n.switch or None, "device": n.device or None,
             "name": n.name or None, "mac": n.mac or None, "span": n.span, "mtu": n.mtu or None,
             "slot": n.slot or None} for n in config.nics]
    consoles = console_lines(ref.directory) if state.running else {}
    topology = {k: config.get(f"cpu_{k}") for k in ("sockets", "cores", "threads") if config.get(f"cpu_{k}")}
    problems = [str(e) for e in config.errors()]
    last = read_json(layout.last_run)
    return {
        "name": ref.name,
        "datastore": ref.datastore.name,
        "path": str(ref.directory),
        "dataset": ref.dataset,
        "state": state.label(),
        "running": state.running,
        "pid": state.pid,
        "loader": config.loader or None,
        "uuid": config.get("uuid") or None,
        "cpu": config.cpu or None,
        "cpu_topology": topology or None,
        "memory": mem_text or None,
        "memory_bytes": mem_bytes,
        "autostart": store.settings.autostart_position(ref.name),
        "comports": config.get("comports").split(),
        "consoles": consoles or None,
        "graphics": config.flag("graphics"),
        "disks": disks,
        "networks": nics,
        "tags": config.tags,
        "last_exit": last or None,
        "limits": _limits(store, ref, config, state.pid if state.running else None),
        "problems": problems,
    }


def _limits(store: Store, ref: GuestRef, config: GuestConfig, pid: int | None) -> dict[str, object] | None:
    """The ``limit_*`` keys set and, while the guest runs, what is in force with the usage (``rctl`` rules
    and ``rctl -u``, or the guest's cgroup files: hivectl/runner/limits.py)."""
    from hivectl.errors import HivectlError
    from hivectl.runner import limits

    try:
        wanted = limits.of(config)
    except HivectlError:
        return None  # in ``problems`` already
    if not wanted.any():
        return None
    return {"configured": wanted.keys(),
            "in_force": limits.report(store.host, ref, pid) if pid else None}
