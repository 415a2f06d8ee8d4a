"""Consoles and control sockets, all unix sockets in the guest's directory.

- Serial ports (``comports``, default ``com1``): the first one is the console, ``NAME/console.sock``;
  others are ``NAME/comN.sock``. Everything the first port prints is also appended to ``NAME/console.log``.
  Each is a 16550 at the standard COMn address (``isa-serial,index=n-1``),
  so a guest configured for bhyve's COM ports finds them where it expects. ``hivectl console`` attaches to
  the socket named by the ``console`` file line ``com1=unix:<path>``. A foreground start puts the first
  port on the terminal instead (``com1=stdio``).
- QMP, twice: ``NAME/qmp.sock`` is held by the supervisor for the whole run (it listens for the SHUTDOWN
  event that tells a reboot from a power-off), and ``NAME/qmp-ctl.sock`` takes one-shot commands
  (power button, reset, quit, status) from any process. Two because a QMP socket serves one client at a
  time: a second client's connect just hangs until the first leaves.
- VNC when ``graphics=yes``: on ``graphics_port`` (at ``graphics_listen``, default 127.0.0.1) when a port
  is configured, else on ``NAME/vnc.sock``: no free-port search, hence no race between two starts.
  ``vnc_password`` reaches QEMU through a 0600 secret file, never on the command line.

Unix socket paths are limited to 107 bytes; preflight reports a guest directory too deep for them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from hivectl import validate
from hivectl.drivers.qemu.options import escape, join, props_text
from hivectl.errors import ConfigError
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import GuestLayout
from hivectl.plan import Call
from hivectl.records import record
from hivectl.safety import paths

SOCKET_PATH_MAX = 107
VNC_BASE_PORT = 5900


@record(frozen=True)
class Sockets:
    """The socket files of one guest, as QEMU's options name them (the names are the guest layout's)."""

    layout: GuestLayout

    @property
    def directory(self) -> Path:
        return self.layout.directory

    @property
    def qmp(self) -> Path:
        return self.layout.qmp_socket

    @property
    def control(self) -> Path:
        return self.layout.qmp_control_socket

    @property
    def vnc(self) -> Path:
        return self.layout.vnc_socket

    @property
    def vnc_secret(self) -> Path:
        return self.layout.vnc_secret

    def serial(self, port: str, first: bool) -> Path:
        return self.layout.serial_socket(port, first)

    @property
    def console_log(self) -> Path:
        return self.layout.console_log

    def virt_console(self, port: str) -> Path:
        return self.layout.virt_console(port)

    def all(self, config: GuestConfig) -> list[Path]:
        """Every socket a run of this config creates (what cleanup removes and preflight measures)."""
        ports = config.get("comports").split() or ["com1"]
        paths = [self.qmp, self.control, self.vnc]
        paths += [self.serial(port, i == 0) for i, port in enumerate(ports)]
        return paths


def _server(ident: str, path: Path, logfile: Path | None = None) -> list[str]:
    props = [("id", ident), ("path", str(path)), ("server", "on"), ("wait", "off")]
    if logfile is not None:
        props += [("logfile", str(logfile)), ("logappend", "on")]
    return ["-chardev", join("socket", props)]


def private_log(path: Path) -> list[Call]:
    """Create ``console.log`` 0600 (or tighten an old one) before QEMU appends to it.

    QEMU creates the file with the umask (0644), and what a guest prints on its console is not for every
    local user: cloud-init prints the passwords it generates (``chpasswd``) and host key fingerprints there.
    """
    return [Call(["touch", str(path)], lambda: os.close(paths.open_file(path.parent, path, append=True, create=True))),
            Call(["chmod", "600", str(path)], lambda: os.chmod(path, 0o600))]


def qmp_args(sockets: Sockets) -> list[str]:
    args: list[str] = []
    for ident, path in (("qmp", sockets.qmp), ("qmp-ctl", sockets.control)):
        args += _server(ident, path)
        args += ["-mon", props_text([("chardev", ident), ("mode", "control")])]
    return args


def serial_args(config: GuestConfig, sockets: Sockets, foreground: bool) -> tuple[list[str], dict[str, str]]:
    """``-chardev``/``-device isa-serial`` per COM port, and the ``console`` file lines."""
    ports = config.get("comports").split() or ["com1"]
    for port in ports:
        if port not in ("com1", "com2", "com3", "com4"):
            raise ConfigError(config.path, "comports", config.get("comports"), "expected com1..com4")
    args: list[str] = []
    lines: dict[str, str] = {}
    for i, port in enumerate(ports):
        if i == 0 and foreground:
            args += ["-chardev", join("stdio", [("id", port), ("signal", "off")])]
            lines[port] = "stdio"
        else:
            path = sockets.serial(port, i == 0)
            # The first port is also captured to NAME/console.log: what the guest printed while nobody was
            # attached (boot messages, a crash) is never lost, and it is what tests assert on.
            args += _server(port, path, sockets.console_log if i == 0 else None)
            lines[port] = f"unix:{path}"
        args += ["-device", join("isa-serial", [("chardev", port), ("index", str(int(port[3]) - 1))])]
    return args, lines


@record(frozen=True)
class Vnc:
    """Where the VNC server listens and how the ``console`` file names it."""

    option: str  # the -vnc argument
    line: str  # vnc=... in the console file
    secret: bool


def vnc_for(config: GuestConfig, sockets: Sockets) -> Vnc:
    """The VNC server: TCP only when a port is configured (QEMU numbers displays from 5900), else a socket."""
    source = config.path
    port_text = config.get("graphics_port")
    secret = bool(config.get("vnc_password"))
    extra = [",password-secret=vncpass"] if secret else []
    if not port_text:
        return Vnc("".join([f"unix:{escape(str(sockets.vnc))}", *extra]), f"unix:{sockets.vnc}", secret)
    port = validate.tcp_port(source, "graphics_port", port_text)
    if port < VNC_BASE_PORT:
        raise ConfigError(source, "graphics_port", port_text,
                          f"QEMU serves VNC on display ports {VNC_BASE_PORT} and up")
    listen = config.get("graphics_listen") or "127.0.0.1"
    try:
        address = ipaddress.ip_address(listen)
    except ValueError:
        raise ConfigError(source, "graphics_listen", listen, "expected an IPv4 or IPv6 address") from None
    host = f"[{address}]" if address.version == 6 else str(address)
    return Vnc("".join([f"{host}:{port - VNC_BASE_PORT}", *extra]), f"{host}:{port}", secret)
