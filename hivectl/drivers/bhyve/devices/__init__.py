"""The PCI devices of one boot: what the config asks for, placed by ``slots`` and spelled for bhyve.

Each device kind is one module of this package (``registry.KINDS``, in vm-bhyve's slot order); this module
only walks the registry: it asks every kind for its placement rule, places them all at once, then lets
each kind build its devices. Device strings follow vm-bhyve byte for byte where vm-bhyve works (so ``ps``
shows what administrators know), and the options are kept structured so ``kconfig`` can print the same
devices as bhyve_config(5) keys.
"""

from __future__ import annotations

from pathlib import Path

from hivectl import validate
from hivectl.drivers.bhyve.devices import registry
from hivectl.drivers.bhyve.devices.base import DeviceContext, LayoutInput, numbered
from hivectl.drivers.bhyve.devices.console import console_ports
from hivectl.drivers.bhyve.devices.fbuf import Fbuf
from hivectl.drivers.bhyve.devices.install import nulliso_attached
from hivectl.drivers.bhyve.devices.passthru import requests as passthru_requests
from hivectl.drivers.bhyve.devices.registry import for_placement, kind_of
from hivectl.drivers.bhyve.model import PciDevice
from hivectl.drivers.bhyve.slots import Layout, LayoutRequest, allocate
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig

__all__ = ["DeviceContext", "Fbuf", "build", "console_ports", "layout_request", "nulliso_attached", "numbered",
           "passthru_requests", "sockets", "wires_memory"]


def layout_request(config: GuestConfig, *, install: bool, fbuf: bool) -> LayoutRequest:
    """The allocator's input for this config (install: something sits at install_slot on this boot)."""
    source = config.path
    start_slot = validate.integer(source, "start_slot", config.get("start_slot"), 1, 30)
    install_slot = validate.integer(source, "install_slot", config.get("install_slot"), 1, 30)
    boot = LayoutInput(config, install, fbuf, install_slot)
    rules = [rule for rule in (kind.rule(boot) for kind in registry.KINDS) if rule is not None]
    return LayoutRequest(rules, start_slot, install_slot, source)


def build(ctx: DeviceContext) -> tuple[list[PciDevice], PciDevice | None, Layout]:
    """All devices in vm-bhyve's order, the install-slot device (placed last on the command line), the layout."""
    installing = ctx.install_media is not None or ctx.null_iso is not None
    layout = allocate(layout_request(ctx.config, install=installing, fbuf=ctx.fbuf is not None))
    devices: list[PciDevice] = []
    last: PciDevice | None = None
    for placement in layout.placements:
        device = for_placement(placement.kind).build(ctx, placement, devices)
        if kind_of(device).after_options:
            last = device
        else:
            devices.append(device)
    _check_bootindex(ctx, [*devices, *([last] if last else [])])
    return devices, last, layout


def wires_memory(devices: list[PciDevice]) -> bool:
    """True when a device needs the guest's memory wired (bhyve ``-S``): passthru."""
    return any(kind_of(d).wires_memory for d in devices)


def sockets(devices: list[PciDevice]) -> list[Path]:
    """Sockets bhyve will bind for these devices and never remove; a leftover one makes the start fail."""
    return [path for d in devices for path in kind_of(d).sockets(d)]


def _check_bootindex(ctx: DeviceContext, devices: list[PciDevice]) -> None:
    """Two devices with one ``bootindex`` make bhyve exit 4 at start; name both keys instead."""
    seen: dict[str, str] = {}
    for device in devices:
        options = [*device.opts, *(o for p in device.ports for o in p.opts)]
        for opt in options:
            if opt.name != "bootindex" or opt.value is None:
                continue
            where = kind_of(device).opts_key(device)
            if not opt.value.isdigit():
                raise ConfigError(ctx.config.path, where, opt.value, "bootindex is a whole number")
            if opt.value in seen:
                raise ConfigError(ctx.config.path, where, opt.value,
                                  f"bootindex={opt.value} is also used by {seen[opt.value]}")
            seen[opt.value] = where
