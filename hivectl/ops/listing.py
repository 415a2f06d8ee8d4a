"""``list`` and ``info``: what guests exist and what they are doing.

``list`` must stay fast on hosts with a thousand guests: one directory scan per datastore, one small
file read per guest, a few ``stat`` calls, and no process per guest (vm-bhyve forks ~10 per guest).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivectl.errors import HivectlError
from hivectl.model.layout import RUN_LOCK, config_name, suspend_name
from hivectl.rcfile import parse_text
from hivectl.runtime import GuestState, console_lines, guest_state, read_json
from hivectl.store import GuestRef, Store
from hivectl.validate import memory, yesno


@dataclass(frozen=True)
class Row:
    """One line of ``list``."""

    name: str
    datastore: str
    loader: str
    cpu: str
    memory: str
    vnc: str
    auto: int | None
    state: str
    pid: int | None
    tags: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datastore": self.datastore, "loader": self.loader, "cpu": self.cpu,
                "memory": self.memory, "vnc": self.vnc or None, "auto": self.auto is not None,
                "auto_order": self.auto, "state": self.state, "pid": self.pid, "tags": self.tags}

    @property
    def auto_label(self) -> str:
        return f"Yes [{self.auto}]" if self.auto is not None else "No"


def _scan(directory: str) -> Iterator[tuple[str, str]]:
    """(name, config text) of every guest in one datastore directory, sorted by name.

    Written with ``os`` calls on strings rather than pathlib: this is the hot loop of ``list`` and runs a
    thousand times on a big host (one ``open`` per guest, no ``stat`` before it).
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
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                yield name, handle.read()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            # A config only root may read (one holding a vnc_password is 0600): a non-root ``list`` still
            # shows the guest and its state, without the values it cannot read. (A directory it cannot
            # even look into, such as lost+found, is not known to be a guest and is skipped.)
            if os.path.exists(path):
                yield name, ""


def list_guests(store: Store, running_only: bool = False, tag: str | None = None) -> list[Row]:
    rows = []
    settings = store.settings
    stopped = GuestState("Stopped")
    for datastore in store.datastores():
        if not datastore.holds_guests:
            continue
        base = str(datastore.path)
        for name, text in _scan(base):
            values = parse_text(text)
            tags = values.get("tags", "").split()
            if tag is not None and tag not in tags:
                continue
            directory = f"{base}/{name}"
            if os.path.exists(f"{directory}/{RUN_LOCK}") or os.path.exists(f"{directory}/{suspend_name(name)}"):
                state = guest_state(Path(directory), name)
            else:
                state = stopped
            if running_only and state.state in ("Stopped", "Suspended"):
                continue
            vnc = ""
            if state.running and yesno(values.get("graphics", "")):
                vnc = console_lines(Path(directory)).get("vnc", "")
            rows.append(Row(name, datastore.name, values.get("loader") or "none", values.get("cpu", ""),
                            values.get("memory", ""), vnc, settings.autostart_position(name), state.label(),
                            state.pid, tags))
    return rows


def _file_sizes(path: Path) -> tuple[int | None, int | None]:
    """Apparent size and bytes really allocated (sparse files use far less)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_blocks * 512


def guest_info(store: Store, ref: GuestRef) -> dict[str, Any]:
    """Everything worth knowing about one guest, as plain data (rendered as YAML or JSON by the CLI)."""
    layout = ref.layout
    from hivectl.model.guest import GuestConfig  # here, not at the top: ``list`` needs no key table

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
        "problems": problems,
    }
