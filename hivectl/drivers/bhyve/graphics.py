"""The VNC frame buffer: its settings for one boot and the choice of a free port.

vm-bhyve picks the first port from 5900 that no socket listens on, from ``netstat -an`` and without
looking at addresses. Here the question is one read-only ``sockstat`` query through the Host, and a port
only counts as taken when a listener could clash with ours (same address, or a wildcard on either side).
The finder is a plain callable so tests (and callers that reserve ports themselves) can pass a fixed one.
"""

from __future__ import annotations

from collections.abc import Callable

from hivectl import validate
from hivectl.drivers.bhyve.devices.fbuf import Fbuf
from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.model.guest import GuestConfig

VncPortFinder = Callable[[str], int]  # listen address -> a port that is free for it
FIRST_PORT = 5900
SEARCH = 200  # vm-bhyve searches 200 ports too
WILDCARDS = ("0.0.0.0", "::", "*")  # noqa: S104 - recognised in listings, never bound


def listening(sockstat_output: str) -> list[tuple[str, int]]:
    """(address, port) of every TCP listener in ``sockstat -46l -P tcp`` output (header lines skipped).

    Columns are USER COMMAND PID FD PROTO LOCAL FOREIGN; the local address is ``addr:port`` with the port
    after the last colon (``*:22``, ``127.0.0.1:5900``, ``::1:5901``).
    """
    found = []
    for line in sockstat_output.splitlines():
        words = line.split()
        proto = next((i for i, w in enumerate(words) if w.startswith("tcp")), None)
        if proto is None or proto + 1 >= len(words):
            continue
        address, _, port = words[proto + 1].rpartition(":")
        if port.isdigit():
            found.append((address.strip("[]"), int(port)))
    return found


def first_free(listeners: list[tuple[str, int]], listen: str, first: int = FIRST_PORT, count: int = SEARCH) -> int:
    for port in range(first, first + count):
        if not any(p == port and (a in WILDCARDS or listen in WILDCARDS or a == listen) for a, p in listeners):
            return port
    raise HivectlError(f"no free VNC port for {listen} between {first} and {first + count - 1}; "
                       "set graphics_port")


class SockstatPorts:
    """The default finder: one ``sockstat`` query on the host (FreeBSD's listing of open sockets).

    Where there is no sockstat (the simulated FreeBSD host runs on Linux) the kernel is asked directly:
    a port is free for ``listen`` when a socket can be bound to it (and is closed again at once).
    """

    def __init__(self, host: Host) -> None:
        self.host = host

    def __call__(self, listen: str) -> int:
        if self.host.which("sockstat") is None:
            return probe_free(listen)
        output = self.host.run(["sockstat", "-46l", "-P", "tcp"]).stdout
        return first_free(listening(output), listen)


def probe_free(listen: str, first: int = FIRST_PORT, count: int = SEARCH) -> int:
    import errno
    import socket

    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    for port in range(first, first + count):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((listen, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    continue
                raise HivectlError(f"graphics_listen={listen}: cannot listen there ({error.strerror})") from None
            return port
    raise HivectlError(f"no free VNC port for {listen} between {first} and {first + count - 1}; "
                       "set graphics_port")


def wait_for_client(config: GuestConfig, installing: bool, first_boot: bool) -> bool:
    """``graphics_wait``: yes always waits, no never, auto only on the first boot of an install (churchers#355)."""
    mode = config.get("graphics_wait")
    if mode == "auto":
        return installing and first_boot
    return validate.yesno(mode)


def fbuf(config: GuestConfig, ports: VncPortFinder, installing: bool, first_boot: bool) -> Fbuf:
    listen = config.get("graphics_listen")
    port_text = config.get("graphics_port")
    port = validate.tcp_port(config.path, "graphics_port", port_text) if port_text else ports(listen)
    width = height = ""
    resolution = config.get("graphics_res")
    if resolution:
        width, _, height = resolution.partition("x")
    return Fbuf(listen, port, width, height, config.get("graphics_vga"), config.get("vnc_password"),
                wait_for_client(config, installing, first_boot))
