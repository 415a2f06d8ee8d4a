"""Scratch guests for the QEMU driver tests: a real vm_dir, real config files, real disk images.

Guest directories live under a short private directory in /tmp, not pytest's tmp_path: QEMU's unix
sockets (console, QMP, VNC) must fit in 107 bytes, and tmp_path names can be longer than that.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hivectl.drivers.base import BootPlan, BootRequest
from hivectl.drivers.qemu.driver import QemuDriver
from hivectl.host.local import LocalHost
from hivectl.hostconf import HostSettings
from hivectl.model.guest import GuestConfig
from hivectl.net.ports import Port
from hivectl.store import GuestRef, Store

QCOW2 = "qcow2"  # as a file's content: a real (empty) qcow2 image made by qemu-img
TINYGUEST = "tinyguest:"  # as a file's content, e.g. "tinyguest:vmlinux": a link to that tiny-guest artefact


@functools.cache
def _tinyguest() -> object:
    import tinyguest

    return tinyguest.build()  # cached on disk too, but even a cache hit re-reads apt's lists (~1 s)


def tinyguest_artifact(field_name: str) -> Path:
    """A file of the tiny guest (built once and cached by ``tinyguest.build``)."""
    path = getattr(_tinyguest(), field_name)
    assert isinstance(path, Path)
    return path


@dataclass
class Scratch:
    """A vm_dir with one driver over it."""

    root: Path
    host: LocalHost = field(init=False)
    store: Store = field(init=False)
    driver: QemuDriver = field(init=False)

    def __post_init__(self) -> None:
        self.host = LocalHost("linux", Path("/"))
        self.store = Store(HostSettings(vm_dir=str(self.root)), self.host)
        self.driver = QemuDriver(self.host, self.store)

    def guest(self, name: str, conf: str, files: dict[str, bytes | int | str] | None = None) -> GuestRef:
        """Write ``NAME/NAME.conf`` and the given files: bytes, an int (a sparse file of that size), or
        ``QCOW2`` (an 8 MiB qcow2 image) or ``TINYGUEST + artefact`` (a symlink to it)."""
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.conf").write_text(conf)
        for rel, content in (files or {}).items():
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str) and content.startswith(TINYGUEST):
                path.symlink_to(tinyguest_artifact(content[len(TINYGUEST):]))
            elif content == QCOW2:
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "8M"], check=True)
            elif isinstance(content, int):
                with path.open("wb") as handle:
                    handle.truncate(content)
            elif isinstance(content, bytes):
                path.write_bytes(content)
        return self.store.get(name)

    def plan(self, ref: GuestRef, ports: list[Port] | None = None, install: Path | None = None,
             first_boot: bool = True, foreground: bool = False) -> BootPlan:
        config: GuestConfig = ref.config()
        return self.driver.plan_boot(BootRequest(ref, config, ports or [], install, first_boot, foreground))
