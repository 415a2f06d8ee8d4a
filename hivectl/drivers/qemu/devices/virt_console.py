"""``virt_console0..15``: one ``virtio-serial-pci`` whose ports are sockets ``NAME/vtcon.<port>``.

``yes``/``on``/``1`` makes a port named by its number, other text names it (vm-bhyve's rule).
"""

from __future__ import annotations

from hivectl.drivers.qemu.devices.base import DeviceContext, QemuDeviceKind
from hivectl.drivers.qemu.options import join
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError
from hivectl.patterns import Pattern

MAX_VIRT_CONSOLES = 16
_PORT_NAME = Pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class VirtConsole(QemuDeviceKind):
    name = "virt_console"
    slot_order = 80

    def devices(self, ctx: DeviceContext) -> list[PciDevice]:
        config = ctx.request.config
        after: list[str] = []
        for index in range(MAX_VIRT_CONSOLES):
            key = f"virt_console{index}"
            value = config.get(key)
            if not value:
                break
            port = str(index) if value.lower() in ("yes", "on", "1", "true") else value
            if not _PORT_NAME.fullmatch(port):
                ctx.problems.append(ConfigError(config.path, key, value,
                                                "a port name is letters, digits, '.', '_', '-'"))
                continue
            ident = f"vtcon{index}"
            after += ["-chardev", join("socket", [("id", ident), ("path", str(ctx.sockets.virt_console(port))),
                                                  ("server", "on"), ("wait", "off")]),
                      "-device", join("virtserialport", [("bus", "vtcon.0"), ("chardev", ident), ("name", port)])]
        if not after:
            return []
        return [PciDevice("virt_console0", "virtio-serial-pci", [("id", "vtcon")], after=after)]


KIND = VirtConsole()
