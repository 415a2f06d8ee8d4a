"""Hypervisor drivers: bhyve (FreeBSD) and qemu (Linux), behind one interface (``base.Driver``)."""

from __future__ import annotations

from hivectl.drivers.base import Driver
from hivectl.host.base import Host
from hivectl.store import Store


def get_driver(name: str, host: Host, store: Store) -> Driver:
    """The driver called ``name`` (imported lazily: each pulls in its own planner)."""
    if name == "bhyve":
        from hivectl.drivers.bhyve.driver import BhyveDriver

        return BhyveDriver(host, store)
    if name == "qemu":
        from hivectl.drivers.qemu.driver import QemuDriver

        return QemuDriver(host, store)
    raise ValueError(f"unknown driver {name!r}")
