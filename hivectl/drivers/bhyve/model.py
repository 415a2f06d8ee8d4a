"""The structured bhyve invocation that both renderers (argv and bhyve_config file) print.

Keeping the invocation as data rather than as a growing string list is what lets one plan come out two
ways: as the familiar command line and as a ``-k`` configuration file (used when the command line would
carry a secret). Each device keeps the config keys it came from, so late checks can name them.
"""

from __future__ import annotations

from pathlib import Path

from hivectl.drivers.bhyve.slots import Placement
from hivectl.errors import ConfigError
from hivectl.patterns import Pattern
from hivectl.records import field, record
from hivectl.safety import values

_OPT_NAME = Pattern(r"[A-Za-z0-9_-]+")


@record(frozen=True)
class Opt:
    """One device option: ``name=value``, or a bare ``name`` (a boolean bhyve reads as true)."""

    name: str
    value: str | None = None
    secret: bool = False

    def text(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value}"


@record(frozen=True)
class AhciPort:
    """One port of a shared ``ahci`` controller (``hd:<path>[,opts]`` / ``cd:<path>[,opts]``)."""

    type: str  # hd or cd
    path: str
    opts: tuple[Opt, ...] = ()


@record(frozen=True)
class PciDevice:
    """One ``-s`` device. ``head`` is the first, positional token (path, backend, host device)."""

    placement: Placement
    emulation: str
    head: str | None = None
    opts: tuple[Opt, ...] = ()
    ports: tuple[AhciPort, ...] = ()  # emulation "ahci" only
    named: tuple[tuple[str, str], ...] = ()  # virtio-console: (port name, socket path)

    @property
    def has_secret(self) -> bool:
        return any(o.secret for o in self.opts)


@record(frozen=True)
class Topology:
    cpus: str
    sockets: str = ""
    cores: str = ""
    threads: str = ""

    def text(self) -> str:
        """The ``-c`` argument as vm-bhyve writes it: ``cpus[,sockets=S][,cores=C][,threads=T]``."""
        extra = [f"{k}={v}" for k, v in (("sockets", self.sockets), ("cores", self.cores),
                                         ("threads", self.threads)) if v]
        return ",".join([self.cpus, *extra])


@record
class Invocation:
    """Everything one bhyve run gets, in vm-bhyve 1.8's order (see ``render.argv``)."""

    name: str
    topology: Topology
    memory: str
    devices: list[PciDevice] = field(default_factory=list)
    ignore_msr: bool = False
    bootrom: str | None = None
    bootvars: str | None = None
    fwcfg: str | None = None
    tpm: tuple[str, str] | None = None  # (type, path)
    raw: list[str] = field(default_factory=list)  # bhyve_options, already split
    wired: bool = False
    uuid: str | None = None
    utc: bool = True
    pins: list[tuple[int, int]] = field(default_factory=list)
    no_mptable: bool = False
    install: PciDevice | None = None
    com: list[tuple[str, str]] = field(default_factory=list)  # (com1, /dev/nmdm-NAME.1A | stdio)

    @property
    def has_secret(self) -> bool:
        return any(d.has_secret for d in self.all_devices)

    @property
    def all_devices(self) -> list[PciDevice]:
        return [*self.devices, *([self.install] if self.install else [])]


def parse_opts(source: str | Path | None, key: str, value: str) -> tuple[Opt, ...]:
    """Split comma-separated device options the way bhyve's generic parser does, refusing what it refuses.

    bhyve stores each option as a config node name, so a ``.`` in a name is fatal at start (exit 4), and an
    empty item is a stray comma. Checking here reports the config key instead of bhyve's cryptic exit.
    """
    opts: list[Opt] = []
    if not value:
        return ()
    for item in value.split(","):
        name, sep, val = item.partition("=")
        if not _OPT_NAME.fullmatch(name):
            raise ConfigError(source, key, value, f"option {item!r} is not name or name=value (names use letters, "
                                                  "digits, '_' and '-')")
        if sep and not val:
            raise ConfigError(source, key, value, f"option {item!r} has no value after '='")
        check_text(source, key, val)
        opts.append(Opt(name, val if sep else None))
    return tuple(opts)


def check_text(source: str | Path | None, key: str, value: str) -> str:
    """Refuse characters bhyve would reinterpret inside an option value.

    bhyve splits device options at ``,`` and, when it reads a value, expands ``%(name)`` and drops a
    backslash before any character (bhyve_config(5)). A path with these would silently become another
    path, so it is refused with the key that carries it (the rule is ``hivectl.safety.values.bhyve_value``).
    """
    return values.bhyve_value(source, key, value)


def escape_value(value: str) -> str:
    """Quote a free-text value (a VNC password) so bhyve's expansion gives back exactly ``value``."""
    return values.bhyve_config_value(value)
