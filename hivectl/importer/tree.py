"""A bhyve(8) command line read into bhyve_config(5) keys, the way bhyve builds its configuration tree.

bhyve turns every option into keys before it does anything else (``usr.sbin/bhyve/bhyverun.c``,
``amd64/bhyverun_machdep.c``): ``-m 4G`` is ``memory.size=4G``, ``-H`` is ``x86.vmexit_on_hlt=true``,
``-s 3,virtio-blk,/img,ro`` is ``pci.0.3.0.device=virtio-blk``, ``pci.0.3.0.path=/img`` and
``pci.0.3.0.ro=true``. Two command lines that give the same keys run the same guest, whatever the order of
their ``-s`` options or of the options inside one ``-s``; so ``hivectl import`` reads the command line it is
given, and the one hivectl plans for the imported guest, into this form and compares them
(hivectl/importer/compare.py). A ``-k`` file (bhyve_config(5)) is read into the same keys.

Each key keeps the word it came from, for refusals, and the option text as written (``ro`` or
``ro=true``), so that the imported config spells options the way the administrator did. Only what bhyve
would accept at parse time is accepted here (the grammar of bhyve(8) and each device's parser:
``pci_ahci.c``, ``pci_virtio_console.c``, ``pci_passthru.c``, ``pci_xhci.c``...); the rest is refused with
the argument that carries it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hivectl.importer.words import ImportRefused, Where, getopt, program_name

OPTSTRING = "aehuwxACDHIPSWYk:f:o:p:G:c:s:m:n:l:K:U:r:"
FLAG_KEYS = {
    "a": ("x86.x2apic", "false"), "C": ("memory.guest_in_core", "true"), "D": ("destroy_on_poweroff", "true"),
    "e": ("x86.strictio", "true"), "H": ("x86.vmexit_on_hlt", "true"), "P": ("x86.vmexit_on_pause", "true"),
    "S": ("memory.wired", "true"), "u": ("rtc.use_localtime", "false"), "W": ("virtio_msix", "false"),
    "w": ("x86.strictmsr", "false"), "x": ("x86.x2apic", "true"), "Y": ("x86.mptable", "false"),
}
EMULATIONS = ("hostbridge", "amd_hostbridge", "lpc", "ahci", "ahci-hd", "ahci-cd", "virtio-blk", "virtio-net",
              "virtio-rnd", "virtio-console", "virtio-scsi", "virtio-9p", "virtio-input", "nvme", "e1000", "uart",
              "passthru", "fbuf", "xhci", "hda")
_SLOT = re.compile(r"([0-9]{1,3})(?::([0-9]{1,3}))?(?::([0-9]{1,3}))?")
_PORT_START = re.compile(r",(?=(?:hd|cd):)")


@dataclass
class Entry:
    value: str
    where: Where
    token: str = ""  # the option as written inside a -s (``ro``, ``ro=true``), for the config


@dataclass
class Tree:
    """bhyve_config(5) keys in the order bhyve would hold them, plus ``-f`` items (no key: fw_cfg files)."""

    keys: dict[str, Entry] = field(default_factory=dict)
    fwcfg: list[tuple[str, Where]] = field(default_factory=list)

    def set(self, key: str, value: str, where: Where, token: str = "") -> None:
        """Set a key; setting it again replaces it and moves it to the end, as bhyve's config.c does."""
        self.keys.pop(key, None)
        self.keys[key] = Entry(value, where, token)

    def get(self, key: str) -> str | None:
        entry = self.keys.get(key)
        return entry.value if entry is not None else None

    def devices(self) -> dict[tuple[int, int, int], dict[str, Entry]]:
        """``pci.B.S.F.*`` keys grouped by address (keys relative to the node), in address order."""
        found: dict[tuple[int, int, int], dict[str, Entry]] = {}
        for key, entry in self.keys.items():
            parts = key.split(".", 4)
            if parts[0] == "pci" and len(parts) == 5 and all(p.isdigit() for p in parts[1:4]):
                addr = (int(parts[1]), int(parts[2]), int(parts[3]))
                found.setdefault(addr, {})[parts[4]] = entry
        return dict(sorted(found.items()))

    def values(self) -> dict[str, str]:
        return {key: entry.value for key, entry in self.keys.items()}


def _generic(tree: Tree, node: str, text: str, where: Where) -> None:
    """bhyve's generic option parser: ``name[=value]`` items, a bare name is ``true`` (pci_emul.c)."""
    if not text:
        return
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if "." in name:
            raise ImportRefused(where, f"option {item!r}: bhyve refuses a '.' in an option name "
                                       "(Invalid config node name)")
        tree.set(f"{node}.{name}", value if sep else "true", where, item)


def _blockif(tree: Tree, node: str, conf: str | None, where: Where, path_key: str = "path") -> None:
    """``<path>[,options]`` (block_if.c): the first item is the path, the rest are generic options."""
    if conf is None:
        raise ImportRefused(where, "a block device needs a path (bhyve: Missing \"path\" for block device)")
    path, _, rest = conf.partition(",")
    tree.set(f"{node}.{path_key}", path, where)
    _generic(tree, node, rest, where)


def _ahci(tree: Tree, node: str, conf: str | None, where: Where, only: str | None) -> None:
    """``ahci-hd,<blockif>``/``ahci-cd,<blockif>`` (one port), or ``ahci,hd:<p>[,..],cd:<p>...`` (pci_ahci.c)."""
    tree.set(f"{node}.device", "ahci", where)
    if only is not None:
        port = f"{node}.port.0"
        tree.set(f"{port}.type", only, where)
        _blockif(tree, port, conf, where)
        return
    if not conf:
        raise ImportRefused(where, "an ahci controller without ports: hivectl keeps only disks")
    for index, text in enumerate(_PORT_START.split(conf)):
        kind, sep, rest = text.partition(":")
        if not sep or kind not in ("hd", "cd"):
            raise ImportRefused(where, f"port {index} {text!r} does not start with hd: or cd: (bhyve: Missing or "
                                       "invalid type)")
        if not rest:
            raise ImportRefused(where, f"port {index} is empty (bhyve skips it, and the port numbers after it move)")
        if index >= 32:
            raise ImportRefused(where, "more than 32 ports: bhyve silently ignores the ones after the 32nd")
        port = f"{node}.port.{index}"
        tree.set(f"{port}.type", kind, where)
        _blockif(tree, port, rest, where)


def _console(tree: Tree, node: str, conf: str | None, where: Where) -> None:
    """``virtio-console,<name>=<path>[,...]`` (pci_virtio_console.c): 1 to 16 ports."""
    if not conf:
        raise ImportRefused(where, "virtio-console needs at least one name=path port (bhyve crashes without)")
    items = conf.split(",")
    if len(items) > 16:
        raise ImportRefused(where, "virtio-console has at most 16 ports")
    for index, item in enumerate(items):
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ImportRefused(where, f"port {item!r} has no socket path (bhyve: vtcon: port requires a path)")
        tree.set(f"{node}.port.{index}.name", name, where)
        tree.set(f"{node}.port.{index}.path", path, where)


def _ninep(tree: Tree, node: str, conf: str | None, where: Where) -> None:
    """``virtio-9p,<share>=<dir>[,ro]`` (pci_virtio_9p.c): exactly one share."""
    shares = 0
    for item in (conf or "").split(","):
        name, sep, value = item.partition("=")
        if sep and name not in ("ro",):
            shares += 1
            tree.set(f"{node}.sharename", name, where)
            tree.set(f"{node}.path", value, where)
        elif item:
            tree.set(f"{node}.{name}", value if sep else "true", where, item)
    if shares != 1:
        raise ImportRefused(where, "virtio-9p takes exactly one sharename=/host/directory")


def _passthru(tree: Tree, node: str, conf: str | None, where: Where) -> None:
    """``passthru,<pptN | pci0:B:S:F | pciB:S:F | B/S/F>[,options]`` (pci_passthru.c)."""
    if not conf:
        raise ImportRefused(where, "passthru needs the host device (bhyve: missing required bus setting)")
    head, _, rest = conf.partition(",")
    match = re.fullmatch(r"(?:pci0:|pci)?([0-9]+):([0-9]+):([0-9]+)|([0-9]+)/([0-9]+)/([0-9]+)", head)
    if head.startswith("ppt"):
        tree.set(f"{node}.pptdev", head, where)
    elif match:
        numbers = [g for g in match.groups() if g is not None]
        for key, number in zip(("bus", "slot", "func"), numbers, strict=True):
            tree.set(f"{node}.{key}", str(int(number)), where)
    else:
        raise ImportRefused(where, f"{head!r} is not a host device (pptN, pci0:B:S:F or B/S/F; bhyve: passthru: "
                                   "invalid options)")
    _generic(tree, node, rest, where)


def _xhci(tree: Tree, node: str, conf: str | None, where: Where) -> None:
    """``xhci[,<model>[,...]]`` (pci_xhci.c): USB devices in slots 1, 2, ..."""
    for index, item in enumerate((conf or "").split(",") if conf else [], 1):
        model, sep, value = item.partition("=")
        tree.set(f"{node}.slot.{index}.device", model, where)
        if sep:
            tree.set(f"{node}.slot.{index}.{model}", value, where)


def _slot(tree: Tree, arg: str, where: Where) -> None:
    """``-s slot,emulation[,conf]`` (pci_emul.c ``pci_parse_slot``)."""
    if "," not in arg:
        raise ImportRefused(where, "expected -s slot,emulation[,options] (bhyve: Invalid PCI slot info field)")
    slot_text, rest = arg.split(",", 1)
    emulation, sep, conf_text = rest.partition(",")
    conf = conf_text if sep else None
    match = _SLOT.fullmatch(slot_text)
    if not match:
        raise ImportRefused(where, f"{slot_text!r} is not a PCI slot written S, S:F or B:S:F")
    numbers = [int(g) for g in match.groups() if g is not None]
    bus, slot, func = ([0, numbers[0], 0] if len(numbers) == 1 else [0, *numbers] if len(numbers) == 2 else numbers)
    if not (bus <= 255 and slot <= 31 and func <= 7):
        raise ImportRefused(where, "bus 0-255, slot 0-31, function 0-7 (bhyve: Invalid PCI slot info field)")
    if emulation not in EMULATIONS:
        raise ImportRefused(where, f"bhyve has no device {emulation!r} (pci slot {bus}:{slot}:{func}: unknown device)")
    node = f"pci.{bus}.{slot}.{func}"
    if any(key.startswith(node + ".") for key in tree.keys):
        raise ImportRefused(where, f"pci slot {bus}:{slot}:{func} is used twice (bhyve: already occupied)")
    if emulation in ("ahci", "ahci-hd", "ahci-cd"):
        _ahci(tree, node, conf, where, None if emulation == "ahci" else emulation[-2:])
        return
    if emulation == "amd_hostbridge":
        tree.set(f"{node}.device", "hostbridge", where)
        tree.set(f"{node}.pcireg.vendor", "0x1022", where)
        tree.set(f"{node}.pcireg.device", "0x7432", where)
        return
    tree.set(f"{node}.device", emulation, where)
    if emulation in ("virtio-blk", "nvme"):
        _blockif(tree, node, conf, where)
    elif emulation == "virtio-scsi":
        head, _, more = (conf or "").partition(",")
        if head and "=" not in head:
            tree.set(f"{node}.dev", head, where)
            _generic(tree, node, more, where)
        else:
            _generic(tree, node, conf or "", where)
    elif emulation in ("virtio-net", "e1000"):
        if conf is not None:
            backend, _, more = conf.partition(",")
            tree.set(f"{node}.backend", backend, where)
            _generic(tree, node, more, where)
    elif emulation == "virtio-console":
        _console(tree, node, conf, where)
    elif emulation == "virtio-9p":
        _ninep(tree, node, conf, where)
    elif emulation == "passthru":
        _passthru(tree, node, conf, where)
    elif emulation == "xhci":
        _xhci(tree, node, conf, where)
    elif emulation in ("uart", "virtio-input"):
        if conf:
            tree.set(f"{node}.path", conf, where)
    else:
        _generic(tree, node, conf or "", where)


def _lpc(tree: Tree, arg: str, where: Where) -> None:
    """``-l com1..com4,<backend>``, ``-l bootrom,<rom>[,<vars>][,k=v]``, ``-l tpm,<type>,<path>``,
    ``-l pc-testdev`` (pci_lpc.c; the 14.x key names, as hivectl's -k files use them)."""
    device, sep, conf = arg.partition(",")
    low = device.lower()
    if low in ("com1", "com2", "com3", "com4"):
        if not sep:
            raise ImportRefused(where, f"{device} needs a backend (stdio, a tty path, tcp=...)")
        tree.set(f"lpc.{low}.path", conf, where)
    elif low == "bootrom":
        if not sep:
            raise ImportRefused(where, "bootrom needs the firmware file (bhyve: invalid bootrom option)")
        items = conf.split(",")
        tree.set("lpc.bootrom", items[0], where)
        rest = items[1:]
        if rest and "=" not in rest[0]:
            tree.set("lpc.bootvars", rest[0], where)
            rest = rest[1:]
        _generic(tree, "lpc", ",".join(rest), where)
    elif low == "tpm":
        items = conf.split(",") if sep else []
        if len(items) < 2 or not items[0] or not items[1]:
            raise ImportRefused(where, "expected -l tpm,<type>,<path> (bhyve: invalid tpm type/path)")
        tree.set("tpm.type", items[0], where)
        tree.set("tpm.path", items[1], where)
        _generic(tree, "tpm", ",".join(items[2:]), where)
    elif low == "pc-testdev":
        tree.set("lpc.pc-testdev", "true", where)
    elif "help".startswith(low):
        raise ImportRefused(where, "-l help lists the LPC devices; it runs no guest")
    else:
        raise ImportRefused(where, f"bhyve has no LPC device {device!r} (bhyve: invalid lpc device configuration)")


def _topology(tree: Tree, arg: str, where: Where) -> None:
    """``-c [[cpus=]n][,sockets=n][,cores=n][,threads=n]`` (bhyverun.c ``topology_parse``)."""
    if arg == "":
        for key in ("cpus", "sockets", "cores", "threads"):
            tree.set(key, "1", where)
        return
    for item in arg.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            tree.set("cpus", item, where)
        elif name in ("cpus", "sockets", "cores", "threads"):
            tree.set(name, value, where)
        else:
            raise ImportRefused(where, f"{item!r} is not cpus=, sockets=, cores= or threads= (bhyve: invalid cpu "
                                       "topology)")


def _pin(tree: Tree, arg: str, where: Where) -> None:
    """``-p vcpu:hostcpu``: adds hostcpu to ``vcpu.<vcpu>.cpuset`` (bhyverun.c ``pincpu_parse``)."""
    match = re.fullmatch(r"([0-9]+):([0-9]+)", arg)
    if not match or int(match.group(2)) > 1023:
        raise ImportRefused(where, "expected vcpu:hostcpu with host CPU 0-1023 (bhyve: invalid vcpu pinning)")
    key = f"vcpu.{int(match.group(1))}.cpuset"
    old = tree.get(key)
    tree.set(key, f"{old},{int(match.group(2))}" if old else str(int(match.group(2))), where)


def _option(tree: Tree, arg: str, where: Where) -> None:
    """``-o key=value``: split at the first ``=``; the value may not be empty (bhyverun.c)."""
    key, sep, value = arg.partition("=")
    if not sep or not value or not key:
        raise ImportRefused(where, "expected -o key=value (bhyve: invalid configuration option)")
    tree.set(key, value, where)


def read_config_file(tree: Tree, path: Path, where: Where, text: str | None = None) -> None:
    """``-k FILE``: bhyve_config(5) lines, ``#`` comments, nothing trimmed (config.c ``parse_config_file``)."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as error:
            raise ImportRefused(where, f"cannot read the configuration file: {error.strerror}") from None
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        here = Where(where.index, where.text, where.line, f"{path} line {number}: {line!r}")
        if not sep or not value:
            raise ImportRefused(here, "not key=value (bhyve: invalid config option)")
        tree.set(key, _unescape(value), here)


def _unescape(value: str) -> str:
    """A -k value as bhyve reads it: ``\\x`` is ``x`` (config.c's expansion; hivectl escapes ``%`` that way)."""
    if "%(" in value.replace("\\%", ""):
        raise ImportRefused(None, f"value {value!r} uses bhyve's %(...) expansion, which hivectl does not write")
    return re.sub(r"\\(.)", r"\1", value)


def parse(argv: list[str], line: int | None = None, files: dict[str, str] | None = None) -> tuple[Tree, str, Where]:
    """Read a bhyve command line; returns its keys, the VM name and where the name is.

    ``files`` gives the text of ``-k`` files instead of reading them (hivectl's own plan: the file is not
    written yet).
    """
    parsed = getopt(argv, OPTSTRING, line)
    if program_name(parsed.program) != "bhyve":
        raise ImportRefused(Where(0, parsed.program, line), "expected a bhyve command line")
    tree = Tree()
    for option in parsed.options:
        letter, value, where = option.letter, option.value or "", option.where
        if letter in FLAG_KEYS:
            tree.set(*FLAG_KEYS[letter], where)
        elif letter in ("A", "I"):
            continue  # no effect (bhyve(8): kept for compatibility)
        elif letter == "h":
            raise ImportRefused(where, "-h prints bhyve's usage; it runs no guest")
        elif letter == "r":
            raise ImportRefused(where, "-r restores a checkpoint; import the command line that boots the guest")
        elif letter == "c":
            _topology(tree, value, where)
        elif letter == "m":
            tree.set("memory.size", value, where)
        elif letter == "p":
            _pin(tree, value, where)
        elif letter == "o":
            _option(tree, value, where)
        elif letter == "k":
            text = (files or {}).get(value)
            read_config_file(tree, Path(value), where, text)
        elif letter == "l":
            _lpc(tree, value, where)
        elif letter == "s":
            if "help".startswith(value):
                raise ImportRefused(where, "-s help lists the emulations; it runs no guest")
            _slot(tree, value, where)
        elif letter == "U":
            tree.set("uuid", value, where)
        elif letter == "K":
            tree.set("keyboard.layout", value, where)
        elif letter == "G":
            text = value[1:] if value.startswith("w") else value
            if value.startswith("w"):
                tree.set("gdb.wait", "true", where)
            address, sep, port = text.rpartition(":")
            if sep:
                tree.set("gdb.address", address, where)
            tree.set("gdb.port", port, where)
        elif letter == "n":
            tree.fwcfg.append((f"-n {value}", where))  # NUMA domains: kept as given (bhyve_options)
        elif letter == "f":
            tree.fwcfg.append((f"-f {value}", where))
    if len(parsed.operands) > 1:
        name, where = parsed.operands[1]
        raise ImportRefused(where, "bhyve reads options only before the VM name and takes one name "
                                   "(it would print its usage and exit)")
    if parsed.operands:
        name, where = parsed.operands[0]
        tree.set("name", name, where)
    elif tree.get("name"):
        where = tree.keys["name"].where
        name = tree.keys["name"].value
    else:
        raise ImportRefused(Where(len(argv) - 1, argv[-1], line), "the command line names no VM (bhyve's last "
                                                                  "argument)")
    return tree, name, where
