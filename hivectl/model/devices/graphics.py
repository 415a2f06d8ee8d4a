"""The VNC frame buffer: ``graphics`` and its ``graphics_*`` settings, ``vnc_password`` (vm-bhyve's
config.sample; bhyve(8) fbuf)."""

from __future__ import annotations

from hivectl import patterns, validate
from hivectl.errors import ConfigError
from hivectl.model.keyspec import KeySpec, Source, boolean, choice, pci_slot


def _port(source: Source, key: str, value: str) -> None:
    validate.tcp_port(source, key, value)


def _address(source: Source, key: str, value: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(source, key, value, "expected an IPv4 or IPv6 address") from None
    if "%" in value:  # Python accepts any text as an IPv6 scope id ("::1%x,rfb=0.0.0.0:5999")
        raise ConfigError(source, key, value, "a scope id (%zone) cannot be used: give the address alone")


def _resolution(source: Source, key: str, value: str) -> None:
    match = patterns.fullmatch(r"([0-9]{3,4})x([0-9]{3,4})", value)
    if not match or not (640 <= int(match.group(1)) <= 3840 and 480 <= int(match.group(2)) <= 2160):
        raise ConfigError(source, key, value, "expected WIDTHxHEIGHT between 640x480 and 3840x2160")


def _password(source: Source, key: str, value: str) -> None:
    if "," in value or not value:
        raise ConfigError(source, key, value, "a VNC password cannot be empty or contain ','")


KEYS = (
    KeySpec("graphics", boolean, "VNC frame buffer (UEFI only)", "no"),
    KeySpec("graphics_port", _port, "fixed VNC port (default: first free from 5900)"),
    KeySpec("graphics_listen", _address, "VNC listen address", "127.0.0.1"),
    KeySpec("graphics_res", _resolution, "frame buffer resolution WxH"),
    KeySpec("graphics_wait", choice("yes", "no", "auto"), "wait for a VNC client before booting "
            "(auto: only while installing)", "auto"),
    KeySpec("graphics_vga", choice("io", "on", "off"), "VGA mode of the frame buffer"),
    KeySpec("graphics_slot", pci_slot, "pinned PCI slot of the frame buffer (S, S:F or B:S:F)", hivectl=True),
    KeySpec("vnc_password", _password, "VNC password (given to bhyve through a 0600 config file)"),
)
