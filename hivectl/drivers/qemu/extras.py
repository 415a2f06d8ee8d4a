"""The devices after disks and NICs, in vm-bhyve's order: RNG, passthrough, graphics, USB tablet, sound,
virtio consoles.

| key | QEMU |
|---|---|
| ``virt_random`` | ``virtio-rng-pci`` fed by ``/dev/urandom`` |
| ``passthruN`` (``bus/slot/function[=S:F]``) | ``vfio-pci,host=0000:BB:SS.F`` (the device must be bound to vfio-pci) |
| ``graphics`` | ``VGA`` (``graphics_res`` as its preferred mode) with the VNC server of ``consoles`` |
| ``xhci_mouse`` | ``qemu-xhci`` + ``usb-tablet`` |
| ``sound`` | ``ich9-intel-hda`` + ``hda-duplex`` on a silent audio backend (the guest sees bhyve's hda) |
| ``virt_consoleN`` | ``virtio-serial-pci`` ports on ``NAME/vtcon.<port>`` sockets |

Keys with no QEMU meaning (``hostbridge``, ``fwcfg``, ``ignore_msr``, ``graphics_vga``, ``bhyve_options``)
are ignored; docs/qemu.md lists them.
"""

from __future__ import annotations

import re

from hivectl import validate
from hivectl.drivers.qemu.consoles import Sockets
from hivectl.drivers.qemu.options import Props, join
from hivectl.drivers.qemu.slots import PciDevice
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig

MAX_VIRT_CONSOLES = 16
_PASSTHRU = re.compile(r"([0-9]{1,3})/([0-9]{1,2})/([0-7])(?:=([0-9]{1,2}(?::[0-7])?))?")
_PORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def rng_device(config: GuestConfig) -> list[PciDevice]:
    if not config.flag("virt_random"):
        return []
    return [PciDevice("virt_random", "virtio-rng-pci", [("rng", "rng0")],
                      before=["-object", join("rng-random", [("id", "rng0"), ("filename", "/dev/urandom")])])]


def passthru_devices(config: GuestConfig, problems: list[ConfigError]) -> list[PciDevice]:
    devices: list[PciDevice] = []
    index = 0
    while value := config.get(f"passthru{index}"):
        key = f"passthru{index}"
        match = _PASSTHRU.fullmatch(value)
        if not match:
            problems.append(ConfigError(config.path, key, value, "expected bus/slot/function like 2/0/0[=S:F]"))
            index += 1
            continue
        bus, slot, function, pin = int(match[1]), int(match[2]), int(match[3]), match[4] or ""
        props: Props = [("host", f"0000:{bus:02x}:{slot:02x}.{function:x}")]
        options = config.get(f"{key}_options")
        for item in filter(None, options.split(",")):
            name, _, text = item.partition("=")
            if name == "rom" and text:
                props.append(("romfile", text))
            elif name == "bootindex" and text:
                props.append(("bootindex", str(validate.integer(config.path, f"{key}_options", text, 0, 65535))))
            else:
                problems.append(ConfigError(config.path, f"{key}_options", options,
                                            f"unknown passthru option {item!r} (known: rom=FILE, bootindex=N)"))
        devices.append(PciDevice(key, "vfio-pci", props, pin, key))
        index += 1
    return devices


def graphics_device(config: GuestConfig) -> list[PciDevice]:
    if not config.flag("graphics"):
        return []
    props: Props = []
    resolution = config.get("graphics_res")
    if resolution:
        width, _, height = resolution.partition("x")
        props += [("xres", width), ("yres", height)]
    return [PciDevice("graphics", "VGA", props)]


def usb_devices(config: GuestConfig) -> list[PciDevice]:
    if not config.flag("xhci_mouse"):
        return []
    return [PciDevice("xhci_mouse", "qemu-xhci", [("id", "xhci")],
                      after=["-device", join("usb-tablet", [("bus", "xhci.0")])])]


def sound_devices(config: GuestConfig) -> list[PciDevice]:
    if not config.flag("sound"):
        return []
    return [PciDevice("sound", "ich9-intel-hda", [("id", "hda")],
                      before=["-audiodev", join("none", [("id", "snd0")])],
                      after=["-device", join("hda-duplex", [("bus", "hda.0"), ("audiodev", "snd0")])])]


def virt_console_devices(config: GuestConfig, sockets: Sockets, problems: list[ConfigError]) -> list[PciDevice]:
    """``virt_console0..15``: ``yes``/``on``/``1`` makes a port named by its number, other text names it."""
    after: list[str] = []
    for index in range(MAX_VIRT_CONSOLES):
        key = f"virt_console{index}"
        value = config.get(key)
        if not value:
            break
        port = str(index) if value.lower() in ("yes", "on", "1", "true") else value
        if not _PORT_NAME.fullmatch(port):
            problems.append(ConfigError(config.path, key, value, "a port name is letters, digits, '.', '_', '-'"))
            continue
        ident = f"vtcon{index}"
        after += ["-chardev", join("socket", [("id", ident), ("path", str(sockets.virt_console(port))),
                                              ("server", "on"), ("wait", "off")]),
                  "-device", join("virtserialport", [("bus", "vtcon.0"), ("chardev", ident), ("name", port)])]
    if not after:
        return []
    return [PciDevice("virt_console0", "virtio-serial-pci", [("id", "vtcon")], after=after)]
