"""``bhyve(8)`` for amd64 (bhyve(8); usr.sbin/bhyve/bhyverun.c, amd64/bhyverun_machdep.c).

The stand-in does what bhyve does up to the point where a guest would run, in the same order (``main()`` in bhyverun.c),
so that the first error real bhyve reports is the one reported here, with the same exit status:

1. defaults, then the options left to right (BSD getopt; -c/-p/-l/-o/-n/-f syntax → 64, -s and -k → 4);
2. the VM name, ``config.dump``, topology, cpusets and memory size;
3. open or create the VM (``/dev/vmm/NAME``); from here an error leaves the VM behind;
4. vCPUs against ``hw.vmm.maxcpu``, memory, the boot ROM (15), then every PCI device in bus/slot/function
   order with the checks a simulator can make (backing files, taps in the ifconfig state, nmdm consoles,
   ppt devices, sockets), then TPM, GDB and the SMBIOS UUID.

After a successful start it records itself as a running VM and waits. How it ends models the guest:
SIGTERM is the ACPI power button (exit 1), a control file ``control/NAME.exit`` holding a number makes it
exit with that status (0 reboot, 1 power-off, 2 halt, 3 triple fault, 4 error), ``bhyvectl
--force-reset/--force-poweroff`` use the same file, and ``bhyvectl --destroy`` pulls the VM away (exit 1).
``control/NAME.acpi`` set to ``ignore`` makes the guest ignore the power button, ``off`` makes SIGTERM kill
the process (a guest that never enabled ACPI; bhyve(8) SIGNAL HANDLING).

Where FreeBSD 14.x and 15 differ, the ``release`` of the state decides (default ``14``): ``-n``, the
``bootrom`` vs ``lpc.bootrom`` keys, and what happens without a boot ROM on a VM no loader created.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from . import jails, kld, paths, state, vmm
from .common import (
    EX_OSERR,
    EX_USAGE,
    Getopt,
    GetoptError,
    ToolExit,
    c_strtonum,
    die,
    eprint,
    expand_number,
    parse_memsize,
    pid_alive,
    proc_starttime,
    run,
    scan_hex,
    scan_pattern,
    strtol_strict,
    warn,
)

PROG = "bhyve"
OPTSTRING_14 = "aehuwxACDHIPSWYk:f:o:p:G:c:s:m:l:K:U:"
OPTSTRING_15 = "aehuwxACDHIPSWYk:f:o:p:G:c:s:m:n:l:K:U:"
EXIT_ERROR = 4
PAGE = 4096
ROM_MAX = 16 << 20
CPU_SETSIZE = 1024
POLL = 0.05

EMULATIONS = [
    "hostbridge", "amd_hostbridge", "lpc", "ahci", "ahci-hd", "ahci-cd", "virtio-blk", "virtio-net",
    "virtio-rnd", "virtio-console", "virtio-scsi", "virtio-9p", "virtio-input", "nvme", "e1000", "uart",
    "passthru", "fbuf", "xhci", "hda",
]
ALIASES = {"amd_hostbridge": "hostbridge", "ahci-hd": "ahci", "ahci-cd": "ahci"}
LPC_DEVICES = ["bootrom", "com1", "com2", "com3", "com4", "tpm", "pc-testdev"]
NET_PREFIXES_14 = ["tap", "vmnet", "netgraph", "netmap", "vale"]
NET_PREFIXES_15 = [*NET_PREFIXES_14, "slirp"]
TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0")
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-dA-D][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"

USAGE_LINES = [
    "[-c [[cpus=]numcpus][,sockets=n][,cores=n][,threads=n]]",
    "[-G port] [-k config_file] [-l lpc] [-m mem] [-o var=value]",
    "[-p vcpu:hostcpu] [-r file] [-s pci] [-U uuid] vmname",
]
USAGE_HELP = [
    ("a", "local apic is in xAPIC mode (deprecated)"), ("C", "include guest memory in core file"),
    ("c", "number of CPUs and/or topology specification"), ("D", "destroy on power-off"),
    ("e", "exit on unhandled I/O access"), ("G", "start a debug server"),
    ("H", "vmexit from the guest on HLT"), ("h", "help"), ("k", "key=value flat config file"),
    ("K", "PS2 keyboard layout"), ("l", "LPC device configuration"), ("m", "memory size"),
    ("n", "NUMA domain specification"), ("o", "set config 'var' to 'value'"),
    ("P", "vmexit from the guest on pause"), ("p", "pin 'vcpu' to 'hostcpu'"),
    ("S", "guest memory cannot be swapped"), ("s", "<slot,driver,configinfo> PCI slot config"),
    ("U", "UUID"), ("u", "RTC keeps UTC time"), ("W", "force virtio to use single-vector MSI"),
    ("w", "ignore unimplemented MSRs"), ("x", "local APIC is in x2APIC mode"),
    ("Y", "disable MPtable generation"),
]
FLAG_KEYS = {
    "a": ("x86.x2apic", "false"), "C": ("memory.guest_in_core", "true"), "D": ("destroy_on_poweroff", "true"),
    "e": ("x86.strictio", "true"), "H": ("x86.vmexit_on_hlt", "true"), "P": ("x86.vmexit_on_pause", "true"),
    "S": ("memory.wired", "true"), "u": ("rtc.use_localtime", "false"), "W": ("virtio_msix", "false"),
    "w": ("x86.strictmsr", "false"), "x": ("x86.x2apic", "true"), "Y": ("x86.mptable", "false"),
}
GLOBAL_BOOLS = ["acpi_tables", "acpi_tables_in_memory", "memory.guest_in_core", "destroy_on_poweroff",
                "x86.strictio", "x86.vmexit_on_hlt", "x86.vmexit_on_pause", "rtc.use_localtime",
                "virtio_msix", "x86.strictmsr", "x86.x2apic", "x86.mptable", "x86.verbosemsr", "gdb.wait"]


def usage(release: str, code: int, snapshot: bool = False) -> None:
    """The usage text on stderr (the continuation lines are indented under the first one); a snapshot
    build lists ``-r`` (``#ifdef BHYVE_SNAPSHOT`` in bhyverun.c's usage)."""
    pad = " " * len(f"Usage: {PROG} ")
    lines = [f"Usage: {PROG} [-aCDeHhPSuWwxY]"] + [pad + line for line in USAGE_LINES]
    for letter, text in USAGE_HELP:
        if letter == "n" and release == "14":
            continue
        lines.append(f"       -{letter}: {text}")
        if letter == "p" and snapshot:
            lines.append("       -r: path to checkpoint file")
    print("\n".join(lines), file=sys.stderr)
    raise ToolExit(code)


def is_help(arg: str) -> bool:
    """bhyve compares with ``strncmp(arg, "help", strlen(arg))``: any prefix, even empty, asks for help."""
    return "help".startswith(arg)


def fail(msg: str | None, code: int = EXIT_ERROR, prefix: bool = True) -> None:
    """Print like ``errx``/``EPRINTLN`` and exit."""
    die(PROG if prefix else None, msg, code)


# ---------------------------------------------------------------------------------------------------------
# the configuration tree (bhyve_config(5), usr.sbin/bhyve/config.c)


class Config:
    """bhyve's nvlist tree: nodes are dicts, leaves are strings, insertion order kept for ``config.dump``."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def _node(self, path: str, create: bool) -> dict[str, Any] | None:
        node = self.tree
        done: list[str] = []
        for name in path.split("."):
            if name == "":
                warn(PROG, f"Invalid configuration node: {path}")
                return None
            done.append(name)
            child = node.get(name)
            if isinstance(child, dict):
                node = child
            elif child is not None:
                warn(PROG, f"Configuration node {path} is a child of existing variable {'.'.join(done)}")
                return None
            elif create:
                node[name] = {}
                node = node[name]
            else:
                return None
        return node

    def create_node(self, path: str) -> dict[str, Any]:
        """``create_config_node``: exit 4 on a malformed path."""
        node = self._node(path, True)
        if node is None:
            fail(f"Failed to create configuration node {path}")
        assert node is not None
        return node

    def find_node(self, path: str) -> dict[str, Any] | None:
        """``find_config_node`` (quiet)."""
        node = self.tree
        for name in path.split(".") if path else []:
            child = node.get(name)
            if not isinstance(child, dict):
                return None
            node = child
        return node

    def set_in(self, node: dict[str, Any], name: str, value: str, shown: str) -> None:
        """Set leaf ``name`` of ``node``; a re-set leaf moves to the end (libnv frees and re-adds)."""
        if isinstance(node.get(name), dict):
            fail(f"Attempting to add value {value} to existing node {shown}")
        node.pop(name, None)
        node[name] = value

    def set(self, path: str, value: str) -> None:
        """``set_config_value``: the part before the last dot is the node."""
        if "." in path:
            nodepath, leaf = path.rsplit(".", 1)
            node = self.create_node(nodepath)
        else:
            node, leaf = self.tree, path
        self.set_in(node, leaf, value, path)

    def raw(self, path: str, node: dict[str, Any] | None = None) -> str | None:
        """The stored text of a leaf, or None."""
        base = self.tree if node is None else node
        parts = path.split(".")
        cur: Any = base
        for name in parts[:-1]:
            cur = cur.get(name) if isinstance(cur, dict) else None
        if not isinstance(cur, dict):
            return None
        value = cur.get(parts[-1])
        return value if isinstance(value, str) else None

    def value(self, path: str, node: dict[str, Any] | None = None) -> str | None:
        """A leaf's value with ``%(var)`` expansion and backslash escapes (usr.sbin/bhyve/config.c)."""
        raw = self.raw(path, node)
        return None if raw is None else self.expand(raw, 0)

    def expand(self, text: str, depth: int) -> str:
        """``%(path)`` is replaced by that variable (up to depth 15); ``\\x`` is a literal ``x``."""
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == "%" and text.startswith("(", i + 1) and text.find(")", i + 2) != -1:
                end = text.find(")", i + 2)
                var = text[i + 2:end]
                raw = self.raw(var)
                if raw is None:
                    warn(PROG, f"Failed to expand variable {var}")
                elif depth >= 15:
                    warn(PROG, f"Too many recursive references in {var}")
                else:
                    out.append(self.expand(raw, depth + 1))
                i = end + 1
                continue
            if ch == "%":
                warn(PROG, f"Invalid variable expansion in '{text}'")
            out.append(ch)
            i += 1
        return "".join(out)

    def boolean(self, path: str, default: bool, node: dict[str, Any] | None = None) -> bool:
        """``get_config_bool_default``: a value that is not a boolean word stops bhyve (exit 4)."""
        value = self.value(path, node)
        if value is None:
            return default
        low = value.lower()
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
        fail(f"Invalid value {value} for boolean variable {path}")
        return False

    def dump(self) -> list[str]:
        """``config.dump``: every leaf as ``full.key=value``, depth first, raw values."""
        lines: list[str] = []

        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, val in node.items():
                if isinstance(val, dict):
                    walk(val, f"{prefix}{key}.")
                else:
                    lines.append(f"{prefix}{key}={val}")

        walk(self.tree, "")
        return lines


# ---------------------------------------------------------------------------------------------------------
# option parsing (bhyve(8); usr.sbin/bhyve/amd64/bhyverun_machdep.c)


class Parser:
    """Holds the configuration while the command line is read."""

    def __init__(self, release: str) -> None:
        self.release = release
        self.cfg = Config()
        self.restore: str | None = None  # -r FILE (snapshot builds)
        for key, value in (("acpi_tables", "true"), ("acpi_tables_in_memory", "true"),
                           ("memory.size", "256M"), ("x86.strictmsr", "true"), ("x86.verbosemsr", "false"),
                           ("lpc.fwcfg", "bhyve")):
            self.cfg.set(key, value)

    @property
    def rom_key(self) -> str:
        return "bootrom" if self.release != "14" else "lpc.bootrom"

    @property
    def vars_key(self) -> str:
        return "bootvars" if self.release != "14" else "lpc.bootvars"

    def topology(self, arg: str) -> None:
        """``-c``: tokens ``cpus=``/``sockets=``/``cores=``/``threads=`` or a bare count (bhyverun.c)."""
        if arg == "":
            for key in ("cpus", "sockets", "cores", "threads"):
                self.cfg.set(key, "1")
            return
        for tok in arg.split(","):
            for key in ("cpus", "sockets", "cores", "threads"):
                if tok.startswith(key + "="):
                    self.cfg.set(key, tok[len(key) + 1:])
                    break
            else:
                if "=" in tok:
                    fail(f"invalid cpu topology '{arg}'", EX_USAGE)
                self.cfg.set("cpus", tok)

    def pin(self, arg: str) -> None:
        """``-p vcpu:hostcpu`` (bhyve(8))."""
        got = scan_pattern(arg, ["%d", ":", "%d"])
        if got is None:
            eprint(f"invalid format: {arg}")
            fail(f"invalid vcpu pinning configuration '{arg}'", EX_USAGE)
        assert got is not None
        vcpu, host = got
        if vcpu < 0:
            eprint(f"invalid vcpu '{vcpu}'")
            fail(f"invalid vcpu pinning configuration '{arg}'", EX_USAGE)
        if host < 0 or host >= CPU_SETSIZE:
            eprint(f"hostcpu '{host}' outside valid range from 0 to {CPU_SETSIZE - 1}")
            fail(f"invalid vcpu pinning configuration '{arg}'", EX_USAGE)
        key = f"vcpu.{vcpu}.cpuset"
        old = self.cfg.raw(key)
        self.cfg.set(key, f"{old},{host}" if old else str(host))

    def option(self, arg: str) -> None:
        """``-o key=value``: split at the first ``=``; the value must not be empty."""
        key, sep, value = arg.partition("=")
        if not sep or value == "":
            fail(f"invalid configuration option '{arg}'", EX_USAGE)
        self.cfg.set(key, value)

    def config_file(self, path: str) -> None:
        """``-k file``: ``key=value`` lines, ``#`` comments, nothing trimmed (usr.sbin/bhyve/config.c)."""
        try:
            with open(paths.host_path(path), encoding="utf-8", errors="surrogateescape", newline="") as fh:
                text = fh.read()
        except OSError as exc:
            fail(f"Failed to open configuration file {path}: {_strerror(exc)}")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines, 1):
            if line == "" or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or value == "":
                fail(f"{path} line {number}: invalid config option '{line}'")
            self.cfg.set(key, value)

    def fwcfg(self, arg: str) -> None:
        """``-f [name=]NAME,string=DATA|file=PATH`` (the file is read while parsing)."""
        text = arg[len("name="):] if arg.startswith("name=") else arg
        name, sep, rest = text.partition(",")
        ok = bool(sep) and len(name) <= 55
        if ok and rest.startswith("string="):
            pass
        elif ok and rest.startswith("file="):
            try:
                with open(paths.host_path(rest[len("file="):]), "rb"):
                    pass
            except OSError:
                ok = False
        else:
            ok = False
        if not ok:
            eprint(f'Invalid fw_cfg option "{arg}"')
            fail(f"invalid fwcfg item '{arg}'", EX_USAGE)

    def gdb(self, arg: str) -> None:
        """``-G [w][addr:]port``: split at the last colon."""
        if arg.startswith("w"):
            self.cfg.set("gdb.wait", "true")
            arg = arg[1:]
        addr, sep, port = arg.rpartition(":")
        if sep:
            self.cfg.set("gdb.address", addr)
        self.cfg.set("gdb.port", port)

    def numa(self, arg: str) -> None:
        """``-n id=N,size=S,cpus=LIST[,domain_policy=P]`` (15 only)."""
        values: dict[str, str] = {}
        for tok in arg.split(","):
            for key in ("id", "size", "cpus", "domain_policy"):
                if tok.startswith(key + "="):
                    values[key] = tok[len(key) + 1:]
        if "id" not in values:
            eprint(f"Missing NUMA domain ID in '{arg}'")
            fail(f"invalid NUMA configuration '{arg}'", EX_USAGE)
        ident = strtol_strict(values["id"], 10)
        if ident is None or not 0 <= ident <= 255:
            fail(f"Invalid value for id: '{values['id']}'")
        for key in ("size", "cpus", "domain_policy"):
            if key in values:
                self.cfg.set(f"domains.{ident}.{key}", values[key])

    def lpc(self, arg: str) -> None:
        """``-l lpcdev[,conf]`` (usr.sbin/bhyve/pci_lpc.c)."""
        if is_help(arg):
            print("\n".join(LPC_DEVICES))
            raise ToolExit(0)
        dev, sep, conf = arg.partition(",")
        low = dev.lower()
        if low == "bootrom":
            if not sep:
                fail(f'invalid bootrom option "{arg}"')
            tokens = conf.split(",")
            self.cfg.set(self.rom_key, tokens[0])
            rest = tokens[1:]
            if rest and "=" not in rest[0]:
                self.cfg.set(self.vars_key, rest[0])
                rest = rest[1:]
            if rest:
                generic(self.cfg, self.cfg.create_node("lpc"), ",".join(rest))
        elif low in ("com1", "com2", "com3", "com4"):
            if not sep:
                fail(f"invalid lpc device configuration '{arg}'", EX_USAGE)
            self.cfg.set(f"lpc.{low}.path", conf)
        elif low == "tpm":
            tokens = conf.split(",") if sep else []
            if not tokens or tokens[0] == "":
                fail(f'invalid tpm type "{arg}"')
            if len(tokens) < 2:
                fail(f'invalid tpm path "{arg}"')
            self.cfg.set("tpm.type", tokens[0])
            self.cfg.set("tpm.path", tokens[1])
            if len(tokens) > 2:
                generic(self.cfg, self.cfg.create_node("tpm"), ",".join(tokens[2:]))
        elif low == "pc-testdev":
            self.cfg.set("lpc.pc-testdev", "true")
        else:
            fail(f"invalid lpc device configuration '{arg}'", EX_USAGE)

    def slot(self, arg: str) -> None:
        """``-s slot,emulation[,conf]`` (``pci_parse_slot``, usr.sbin/bhyve/pci_emul.c)."""
        if is_help(arg):
            print("\n".join(EMULATIONS))
            raise ToolExit(0)
        if "," not in arg:
            fail(f'Invalid PCI slot info field "{arg}"', prefix=False)
        slotpart, rest = arg.split(",", 1)
        emul, sep, conf_text = rest.partition(",")
        conf = conf_text if sep else None
        bsf = scan_pattern(slotpart, ["%d", ":", "%d", ":", "%d"])
        if bsf is None:
            sf = scan_pattern(slotpart, ["%d", ":", "%d"])
            if sf is not None:
                bsf = [0, sf[0], sf[1]]
            else:
                s = scan_pattern(slotpart, ["%d"])
                bsf = [0, s[0], 0] if s is not None else [0, -1, 0]
        bus, slot, func = bsf
        if not (0 <= bus <= 255 and 0 <= slot <= 31 and 0 <= func <= 7):
            fail(f'Invalid PCI slot info field "{arg}"', prefix=False)
        where = f"{bus}:{slot}:{func}"
        if emul not in EMULATIONS:
            fail(f'pci slot {where}: unknown device "{emul}"', prefix=False)
        nodepath = f"pci.{bus}.{slot}.{func}"
        if self.cfg.find_node(nodepath) is not None:
            fail(f"pci slot {where} already occupied!", prefix=False)
        node = self.cfg.create_node(nodepath)
        self.cfg.set_in(node, "device", ALIASES.get(emul, emul), nodepath + ".device")
        LEGACY.get(emul, legacy_generic)(self.cfg, node, conf)


def _strerror(exc: OSError) -> str:
    names = {2: "No such file or directory", 13: "Permission denied", 21: "Is a directory",
             20: "Not a directory", 16: "Device busy", 98: "Address already in use",
             36: "File name too long"}
    return names.get(exc.errno or 0, exc.strerror or "Input/output error")


# ---------------------------------------------------------------------------------------------------------
# per-device legacy option parsers: "conf" text -> keys under pci.B.S.F (pci_emul.c and each usr.sbin/bhyve/pci_*.c)


def generic(cfg: Config, node: dict[str, Any], text: str | None) -> None:
    """``pci_parse_legacy_config``: ``name=value`` or bare ``name`` (= true); no dots in names."""
    if text is None:
        return
    for tok in text.split(","):
        name, sep, value = tok.partition("=")
        if "." in name:
            fail(f"Invalid config node name {name}")
        cfg.set_in(node, name, value if sep else "true", name)


def legacy_generic(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """Devices without their own parser."""
    generic(cfg, node, conf)


def legacy_first_token(key: str) -> Any:
    """Parsers whose first token is one value (``path``, ``backend``, ``dev``) and the rest generic."""

    def parse(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
        if conf is None:
            return
        first, sep, rest = conf.partition(",")
        cfg.set_in(node, key, first, key)
        if sep:
            generic(cfg, node, rest)

    return parse


legacy_blockif = legacy_first_token("path")
legacy_net = legacy_first_token("backend")
legacy_scsi = legacy_first_token("dev")


def legacy_amd_hostbridge(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """Options ignored; the vendor/device ids of an AMD host bridge."""
    pcireg = node.setdefault("pcireg", {})
    cfg.set_in(pcireg, "vendor", "0x1022", "pcireg.vendor")
    cfg.set_in(pcireg, "device", "0x7432", "pcireg.device")


def _port(node: dict[str, Any], index: int) -> dict[str, Any]:
    ports = node.setdefault("port", {})
    port = ports.setdefault(str(index), {})
    assert isinstance(port, dict)
    return port


def legacy_ahci_one(kind: str) -> Any:
    """``ahci-hd``/``ahci-cd``: one port 0 of that type."""

    def parse(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
        port = _port(node, 0)
        cfg.set_in(port, "type", kind, "type")
        legacy_blockif(cfg, port, conf)

    return parse


def legacy_ahci(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``ahci,hd:PATH[,opts],cd:PATH...``: ports start at ``,hd:`` or ``,cd:`` (usr.sbin/bhyve/pci_ahci.c)."""
    if conf is None:
        return
    pieces: list[str] = []
    start = 0
    i = 0
    while i < len(conf):
        if conf[i] == "," and (conf.startswith("hd:", i + 1) or conf.startswith("cd:", i + 1)):
            pieces.append(conf[start:i])
            start = i + 1
        i += 1
    pieces.append(conf[start:])
    for index, text in enumerate(pieces):
        if index >= 32:
            break
        if text == "":
            continue
        if text.startswith(("hd:", "cd:")):
            kind, body = text[:2], text[3:]
            if body == "":
                continue
        else:
            fail(f'Missing or invalid type for port {index}: "{text}"', prefix=False)
        port = _port(node, index)
        cfg.set_in(port, "type", kind, "type")
        legacy_blockif(cfg, port, body)


def legacy_nvme(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``nvme,ram=MiB[,opts]`` or ``nvme,PATH[,opts]``."""
    if conf is None:
        return
    if conf.startswith("ram="):
        first, sep, rest = conf.partition(",")
        cfg.set_in(node, "ram", first[4:], "ram")
        if sep:
            generic(cfg, node, rest)
        return
    legacy_blockif(cfg, node, conf)


def legacy_console(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``virtio-console,name=path,...``; with no ports the real parser dereferences NULL (SIGSEGV)."""
    if conf is None:
        _crash(signal.SIGSEGV)
    assert conf is not None
    for index, tok in enumerate(conf.split(",")):
        if index >= 16:
            fail("vtcon: too many ports", prefix=False)
        name, sep, path = tok.partition("=")
        if not sep:
            fail(f"vtcon: port {name} requires a path", prefix=False)
        port = _port(node, index)
        cfg.set_in(port, "name", name, "name")
        cfg.set_in(port, "path", path, "path")


def legacy_9p(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``virtio-9p,share=path[,ro]``: exactly one ``name=path``."""
    if conf is None:
        return
    seen = False
    for tok in conf.split(","):
        name, sep, value = tok.partition("=")
        if sep:
            if seen:
                fail("virtio-9p: more than one share name given", prefix=False)
            seen = True
            cfg.set_in(node, "sharename", name, "sharename")
            cfg.set_in(node, "path", value, "path")
        else:
            cfg.set_in(node, tok, "true", tok)


def legacy_input(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``virtio-input,/dev/input/eventN``: the path is required (no message, exit 4)."""
    if conf is None:
        fail(None)
    legacy_blockif(cfg, node, conf)


def legacy_uart(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``uart[,backend]``: the whole conf is the backend path."""
    if conf is not None:
        cfg.set_in(node, "path", conf, "path")


def legacy_passthru(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``passthru,pptN|pci0:B:S:F|pciB:S:F|B/S/F[,opts]`` (usr.sbin/bhyve/pci_passthru.c)."""
    if conf is None:
        return
    sel, sep, rest = conf.partition(",")
    if sel.startswith("ppt"):
        cfg.set_in(node, "pptdev", sel, "pptdev")
    else:
        got = (scan_pattern(sel, ["pci0:", "%d", ":", "%d", ":", "%d"])
               or scan_pattern(sel, ["pci", "%d", ":", "%d", ":", "%d"])
               or scan_pattern(sel, ["%d", "/", "%d", "/", "%d"]))
        if got is None:
            fail(f'passthru: invalid options "{sel}"', prefix=False)
        assert got is not None
        for key, number in zip(("bus", "slot", "func"), got, strict=True):
            cfg.set_in(node, key, str(number), key)
    if sep:
        generic(cfg, node, rest)


def legacy_xhci(cfg: Config, node: dict[str, Any], conf: str | None) -> None:
    """``xhci,tablet[,...]``: USB devices in ``slot.1``, ``slot.2``..."""
    if conf is None:
        return
    slots = node.setdefault("slot", {})
    for index, tok in enumerate(conf.split(","), 1):
        model = tok.partition("=")[0]
        slot = slots.setdefault(str(index), {})
        cfg.set_in(slot, "device", model, "device")


LEGACY: dict[str, Any] = {
    "amd_hostbridge": legacy_amd_hostbridge, "ahci": legacy_ahci, "ahci-hd": legacy_ahci_one("hd"),
    "ahci-cd": legacy_ahci_one("cd"), "virtio-blk": legacy_blockif, "virtio-net": legacy_net,
    "e1000": legacy_net, "virtio-console": legacy_console, "virtio-scsi": legacy_scsi,
    "virtio-9p": legacy_9p, "virtio-input": legacy_input, "nvme": legacy_nvme, "uart": legacy_uart,
    "passthru": legacy_passthru, "xhci": legacy_xhci,
}


# False while SimHost.call() runs bhyve inside the test process: it must neither crash nor run a guest there
IN_OWN_PROCESS = True


def _crash(sig: int) -> None:
    """Die by a signal, as bhyve does when it dereferences NULL; no core file."""
    if not IN_OWN_PROCESS:
        raise ToolExit(-sig)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    time.sleep(1)
    os._exit(128 + sig)


# ---------------------------------------------------------------------------------------------------------
# checks after parsing (usr.sbin/bhyve/bhyverun.c)


def topology(cfg: Config) -> tuple[int, int, int, int]:
    """``calc_topology``: returns (cpus, sockets, cores, threads) or exits 4 (usr.sbin/bhyve/bhyverun.c).

    Without ``sockets=`` the socket count is the vCPU count, so ``-c 4,cores=2`` does not add up
    (4 sockets x 2 cores is not 4 vCPUs): real bhyve refuses it too.
    """
    values: dict[str, int] = {}
    for key in ("cpus", "cores", "threads", "sockets"):
        raw = cfg.value(key)
        if raw is None:
            continue
        number = strtol_strict(raw, 0)
        if number is None or not 1 <= number <= 65535:
            fail(f"Invalid value for {key}: '{raw}'")
        assert number is not None
        values[key] = number
    cpus = values.get("cpus", 1)
    cores = values.get("cores", 1)
    threads = values.get("threads", 1)
    sockets = values.get("sockets", cpus)
    product = sockets * cores * threads
    if product > 65535:
        fail(f"Computed number of vCPUs too high: {product}")
    if "cpus" in values and cpus != product:
        fail(f"Topology ({sockets} sockets, {cores} cores, {threads} threads) does not match {cpus} vCPUs")
    return (cpus if "cpus" in values else product), sockets, cores, threads


def check_cpusets(cfg: Config, cpus: int) -> None:
    """``vcpu.N.cpuset`` lists for the vCPUs that exist; others are ignored."""
    vcpus = cfg.find_node("vcpu") or {}
    for key in vcpus:
        number = strtol_strict(key, 10)
        if number is None or number < 0 or number >= cpus:
            continue
        text = cfg.value(f"vcpu.{key}.cpuset")
        if text is None:
            continue
        for tok in text.split(","):
            low, dash, high = tok.partition("-")
            start = strtol_strict(low, 0) if low else None
            end = strtol_strict(high, 0) if dash else start
            if start is None or end is None or start < 0 or end >= CPU_SETSIZE:
                fail(f"invalid cpuset for vcpu {number}: '{text}'")
            assert start is not None and end is not None
            if start > end:
                fail(f"Invalid hostcpu range {start}-{end}")


# ---------------------------------------------------------------------------------------------------------
# device initialisation (``init_pci``, usr.sbin/bhyve/pci_emul.c)


class Init:
    """State gathered while the VM and its devices come up; becomes the running record."""

    def __init__(self, cfg: Config, st: dict[str, Any], name: str, release: str) -> None:
        self.cfg = cfg
        self.st = st
        self.name = name
        self.release = release
        self.stdio_used = False
        self.bootindex: dict[int, str] = {}
        self.taps: list[str] = []
        self.files: list[str] = []
        self.ppt: list[str] = []
        self.sockets: list[Any] = []
        self.fbuf: str | None = None
        self.lpc_seen = False
        self.fbuf_seen = False
        self.xhci_seen = False
        self.rom_loaded = False

    # -- helpers ------------------------------------------------------------------------------------------

    def init_error(self, errtext: str = "Invalid argument") -> None:
        fail(f"Device emulation initialization error: {errtext}", prefix=False)

    def add_boot(self, node: dict[str, Any], label: str, block: bool) -> None:
        raw = self.cfg.value("bootindex", node)
        if raw is None:
            return
        got = scan_pattern(raw, ["%d"])
        index = got[0] if got else 0
        if index < 0:
            if block:
                return
            fail(f"Invalid bootindex {index} for {label}")
        if index in self.bootindex:
            fail(f"Could not set bootindex {index} for {label}. Bootindex already occupied by "
                 f"{self.bootindex[index]}")
        self.bootindex[index] = label

    def blockif_open(self, node: dict[str, Any], label: str, devmsg: str) -> None:
        """``blockif_open``: the backing file must exist; read-write, silently read-only otherwise."""
        path = self.cfg.value("path", node)
        if path is None:
            eprint('Missing "path" for block device.')
            self.init_error()
        assert path is not None
        for key in ("nocache", "direct", "sync", "ro", "nodelete"):
            self.cfg.boolean(key, False, node)
        sector = self.cfg.value("sectorsize", node)
        if sector is not None:
            logical, slash, physical = sector.partition("/")
            ssz = strtol_strict(logical, 10)
            psz = strtol_strict(physical, 10) if slash else ssz
            if ssz is None or psz is None:
                eprint(f'Invalid sector size "{sector}"')
                self.init_error()
            assert ssz is not None and psz is not None
            if ssz & (ssz - 1) or psz & (psz - 1) or ssz < 512 or ssz > psz:
                eprint(f"Invalid sector size {ssz}/{psz}")
                self.init_error()
        local = paths.host_path(path)
        problem: str | None = None
        if path == "" or not os.path.exists(local) or jails.device_error(self.st, path):
            problem = "No such file or directory"
        elif os.path.isdir(local):
            problem = "Is a directory"
        elif not os.access(local, os.R_OK):
            problem = "Permission denied"
        if problem:
            warn(PROG, f"Could not open backing file: {path}: {problem}")
            eprint(f"{devmsg}Could not open backing file: {problem}")
            self.init_error(problem)
        self.files.append(os.path.abspath(local))
        self.add_boot(node, label, True)

    def tty_backend(self, path: str | None, where: str) -> None:
        """``uart_tty_backend``: stdio once, ``tcp=``, or a tty path (nmdm pairs are created here)."""
        ok = True
        if path is None or path == "":
            ok = False
        elif path == "stdio":
            ok = not self.stdio_used
            self.stdio_used = True
        elif path.startswith("tcp="):
            ok = _tcp_backend_ok(path[4:])
            if not ok:
                warn(PROG, "Invalid number of parameter")
        else:
            ok = vmm.open_tty(self.st, path)
        if not ok:
            eprint(f"Unable to initialize backend '{path}' for {where}")
            self.init_error()

    # -- devices --------------------------------------------------------------------------------------

    def run_all(self) -> None:
        """Every ``pci.B.S.F`` in order (a ``-k`` file may have added some)."""
        pci = self.cfg.find_node("pci") or {}
        for bus in range(256):
            bnode = pci.get(str(bus))
            if not isinstance(bnode, dict):
                continue
            for slot in range(32):
                snode = bnode.get(str(slot))
                if not isinstance(snode, dict):
                    continue
                for func in range(8):
                    fnode = snode.get(str(func))
                    if isinstance(fnode, dict):
                        self.device(bus, slot, func, fnode)

    def device(self, bus: int, slot: int, func: int, node: dict[str, Any]) -> None:
        where = f"{bus}:{slot}:{func}"
        emul = self.cfg.value("device", node)
        if emul is None:
            fail(f'pci slot {where}: missing "device" value', prefix=False)
        assert emul is not None
        if emul in ALIASES:
            eprint(f'pci slot {where}: legacy device "{emul}", use "{ALIASES[emul]}" instead')
            self.init_error()
        if emul not in EMULATIONS:
            fail(f'pci slot {where}: unknown device "{emul}"', prefix=False)
        label = f"{emul}@pci.{bus}.{slot}.{func}"
        handler = getattr(self, "dev_" + emul.replace("-", "_"), None)
        if handler is not None:
            handler(bus, slot, func, node, label)

    def dev_lpc(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        if self.lpc_seen:
            eprint("Only one LPC bridge is allowed.")
            self.init_error()
        if bus != 0:
            eprint("LPC bridge can be present only on bus 0.")
            self.init_error()
        self.lpc_seen = True
        if self.release == "14" and self.cfg.value("lpc.bootrom") is not None:
            if not load_rom(self.cfg, self.cfg.value("lpc.bootrom"), self.cfg.value("lpc.bootvars")):
                self.init_error()
            self.rom_loaded = True
        for index in range(1, 5):
            path = self.cfg.value(f"lpc.com{index}.path")
            if self.cfg.find_node(f"lpc.com{index}") is not None:
                self.tty_backend(path, f"LPC device com{index}")
        fwcfg = self.cfg.value("lpc.fwcfg")
        if fwcfg not in (None, "bhyve", "qemu"):
            eprint(f'Invalid fwcfg type "{fwcfg}"')
            self.init_error()
        self.cfg.boolean("lpc.pc-testdev", False)

    def dev_ahci(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        ports = node.get("port", {})
        for key in sorted(ports, key=lambda k: strtol_strict(k, 10) or 0):
            port = ports[key]
            if not isinstance(port, dict):
                continue
            kind = self.cfg.value("type", port)
            if kind not in ("hd", "cd"):
                eprint(f"Missing or invalid type for port {key}: \"{kind}\"")
                self.init_error()
            self.blockif_open(port, f"{label}.port.{key}", "")

    def dev_virtio_blk(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        self.blockif_open(node, label, "")

    def dev_nvme(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        for key, msg in (("qsz", "nvme: Invalid qsz option"), ("ioslots", "Invalid ioslots option")):
            raw = self.cfg.value(key, node)
            if raw is not None:
                got = scan_pattern(raw, ["%d"])
                number = got[0] if got else 0
                if number <= 0:
                    eprint(f"{msg} {number}")
                    self.init_error()
        ram = self.cfg.value("ram", node)
        if ram is not None:
            value, end, _ = c_strtonum(ram, 0, unsigned=True)
            if end == 0 or value == 0:
                eprint(f"nvme: Invalid RAM size {ram}")
                self.init_error()
            return
        self.blockif_open(node, label, "nvme: ")

    def dev_virtio_net(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        self.net_mac(node)
        mtu = self.cfg.value("mtu", node)
        if mtu is not None:
            value, end, _ = c_strtonum(mtu, 0, unsigned=True)
            if mtu.startswith("-") or end == 0 or end != len(mtu) or not 46 <= value <= 65535:
                self.init_error()
        if self.cfg.value("backend", node) is not None:
            self.net_backend(node)

    def dev_e1000(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        self.net_mac(node)
        if self.cfg.value("backend", node) is None:
            self.init_error()
        self.net_backend(node)

    def net_mac(self, node: dict[str, Any]) -> None:
        mac = self.cfg.value("mac", node)
        if mac is None:
            return
        octets = ether_aton(mac)
        if octets is None or octets[0] & 1 or not any(octets):
            eprint(f"Invalid MAC {mac}")
            self.init_error()

    def net_backend(self, node: dict[str, Any]) -> None:
        """``netbe_init``: the backend type is ``type=`` or the backend name's prefix (net_backends.c)."""
        backend = self.cfg.value("backend", node) or ""
        kind = self.cfg.value("type", node) or backend
        prefixes = NET_PREFIXES_14 if self.release == "14" else NET_PREFIXES_15
        match = next((p for p in prefixes if kind.startswith(p)), None)
        if match is None:
            self.init_error()
        if match in ("tap", "vmnet"):
            iface = self.st["interfaces"].get(backend)
            opener = iface.get("opened_by") if iface else None
            busy = bool(opener) and pid_alive(int(opener[0]), opener[1])
            hidden = jails.device_error(self.st, f"/dev/{backend}") is not None
            if iface is None or iface.get("kind") != "tap" or busy or hidden \
                    or not kld.is_loaded(self.st, "if_tuntap"):
                eprint(f"open of tap device /dev/{backend} failed")
                self.init_error("Device busy" if busy else "No such file or directory")
            assert iface is not None
            iface["opened_by"] = vmm.me()
            for flag in ("UP", "RUNNING"):
                if flag not in iface["flags"]:
                    iface["flags"].append(flag)
            self.taps.append(backend)
        elif match == "netgraph":
            if self.cfg.value("path", node) is None:
                eprint("path must be provided")
                self.init_error()
            if self.cfg.value("peerhook", node) is None:
                eprint("peer hook must be provided")
                self.init_error()
        elif match == "netmap":
            ifname = backend.partition(":")[2].rstrip("*^")
            if ifname not in self.st["interfaces"]:
                eprint(f"Unable to nm_open(): interface '{backend}', ifname '{ifname}'")
                self.init_error()

    def dev_virtio_console(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        import socket

        ports = node.get("port", {})
        for key in sorted(ports, key=lambda k: strtol_strict(k, 10) or 0):
            port = ports[key]
            path = self.cfg.value("path", port) or ""
            local = paths.host_path(path)
            parent, base = os.path.split(os.path.abspath(local)) if path else ("", "")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            cwd = os.getcwd()
            try:
                if not path or len(base.encode()) > 103:
                    raise OSError(22 if not path else 63, "Invalid argument")
                os.chdir(parent)
                sock.bind(base)
                sock.listen(1)
            except OSError as exc:
                sock.close()
                eprint(f"cannot create port {key}: {_strerror(exc)}")
                self.init_error()
            finally:
                os.chdir(cwd)
            self.sockets.append(sock)

    def dev_virtio_9p(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        if self.cfg.value("sharename", node) is None:
            eprint("virtio-9p: share name is missing")
            self.init_error()
        path = self.cfg.value("path", node)
        if path is None:
            eprint("virtio-9p: path is missing")
            self.init_error()
        assert path is not None
        self.cfg.boolean("ro", False, node)
        if not os.path.isdir(paths.host_path(path)):
            eprint(f"virtio-9p: failed to open '{path}': No such file or directory")
            self.init_error()

    def dev_virtio_input(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        path = self.cfg.value("path", node)
        if path is None or not os.path.exists(paths.host_path(path)):
            eprint(f"vtinput: failed to open {path}")
            self.init_error()

    def dev_virtio_scsi(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        dev = self.cfg.value("dev", node) or "/dev/cam/ctl"
        if not os.path.exists(paths.host_path(dev)):
            eprint(f"virtio-scsi: failed to open {dev}: No such file or directory")
            self.init_error()
        self.add_boot(node, label, False)

    def dev_uart(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        path = self.cfg.value("path", node)
        if path is not None:
            self.tty_backend(path, f"PCI uart at {bus}:{slot}:{func}")

    def dev_passthru(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        if not self.cfg.boolean("memory.wired", False):
            warn(PROG, "passthru requires guest memory to be wired")
            self.init_error()
        for needed in ("/dev/pci", "/dev/io", "/dev/mem"):  # pci_passthru.c opens all three
            if jails.device_error(self.st, needed):
                warn(PROG, f"open {needed}: No such file or directory")
                self.init_error()
        pptdev = self.cfg.value("pptdev", node)
        devices = self.st.get("pci", [])
        if pptdev is not None:
            driver = pptdev.rstrip("0123456789")
            unit = pptdev[len(driver):]
            if driver == "" or unit == "":
                eprint("Invalid passthru device name")
                self.init_error()
            found = [d for d in devices if d["driver"] == driver and str(d["unit"]) == unit]
            if not found:
                eprint(f"Passthru device {pptdev} not found")
                self.init_error()
            if found[0]["domain"] != 0:
                eprint(f"Passthru device {pptdev} on unsupported domain")
                self.init_error()
            hb, hs, hf = found[0]["bus"], found[0]["slot"], found[0]["func"]
        else:
            numbers = []
            for key in ("bus", "slot", "func"):
                raw = self.cfg.value(key, node)
                if raw is None:
                    eprint(f"passthru: missing required {key} setting")
                    self.init_error()
                assert raw is not None
                numbers.append(strtol_strict(raw, 10) if strtol_strict(raw, 10) is not None else -1)
            hb, hs, hf = numbers
        match = [d for d in devices if (d["bus"], d["slot"], d["func"]) == (hb, hs, hf) and d["domain"] == 0]
        if not match or match[0]["driver"] != "ppt":
            warn(PROG, f"PCI device at {hb}/{hs}/{hf} is not using the ppt(4) driver")
            self.init_error()
        ident = f"{hb}/{hs}/{hf}"
        for other, rec in vmm.live_running(self.st).items():
            if other != self.name and ident in rec.get("ppt", []):
                warn(PROG, f"vm_assign_pptdev: {ident}: Device busy")
                self.init_error("Device busy")
        rom = self.cfg.value("rom", node)
        if rom is not None and not os.path.isfile(paths.host_path(rom)):
            eprint(f'passthru_init_rom: can\'t open romfile "{rom}"')
            self.init_error()
        self.ppt.append(ident)

    def dev_fbuf(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        if self.fbuf_seen:
            eprint("Only one frame buffer device is allowed.")
            self.init_error()
        self.fbuf_seen = True
        addr = self.cfg.value("rfb", node)
        if addr is None:
            addr = self.cfg.value("tcp", node)
        host, port = "127.0.0.1", 5900
        if addr is not None:
            if addr.startswith("["):
                close = addr.find("]")
                if close == -1 or close == 1:
                    eprint(f'fbuf: Invalid IPv6 address: "{addr}"')
                    self.init_error()
                host = addr[1:close].split("%")[0]
                rest = addr[close + 1:]
                if not rest.startswith(":") or rest == ":":
                    eprint(f'fbuf: Missing port number: "{addr}"')
                    self.init_error()
                port = _atoi(rest[1:])
            elif ":" in addr:
                host, _, ptext = addr.rpartition(":")
                if ptext == "":
                    eprint(f'fbuf: Missing port number: "{addr}"')
                    self.init_error()
                port = _atoi(ptext)
            else:
                port = _atoi(addr)
        width, height = 1024, 768
        for key in ("w", "h"):
            raw = self.cfg.value(key, node)
            if raw is not None:
                value, _end, _ = c_strtonum(raw, 10)
                value &= 0xFFFF
                if key == "w":
                    width = value
                else:
                    height = value
        if width > 3840 or height > 2160:
            eprint("fbuf: max resolution is 3840x2160")
            self.init_error()
        if width < 640 or height < 480:
            eprint("fbuf: minimum resolution is 640x480")
            self.init_error()
        vga = self.cfg.value("vga", node)
        if vga is not None and vga not in ("io", "on", "off"):
            eprint(f'fbuf: Invalid vga setting: "{vga}"')
            self.init_error()
        self.cfg.boolean("wait", False, node)
        self.fbuf = f"{host}:{port}"

    def dev_xhci(self, bus: int, slot: int, func: int, node: dict[str, Any], label: str) -> None:
        if self.xhci_seen:
            eprint("pci_xhci controller already defined")
            self.init_error()
        self.xhci_seen = True
        slots = node.get("slot", {})
        for key in slots:
            model = self.cfg.value("device", slots[key]) if isinstance(slots[key], dict) else None
            if model != "tablet":
                eprint(f'pci_xhci: unknown device model "{model}"')
                self.init_error()


def _atoi(text: str) -> int:
    got = scan_pattern(text, ["%d"])
    return got[0] if got else 0


def _tcp_backend_ok(text: str) -> bool:
    if text.startswith("["):
        close = text.find("]")
        return close > 1 and text[close + 1:close + 2] == ":" and text[close + 2:].isdigit() \
            and len(text[close + 2:]) <= 5
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and len(port) <= 5)


def ether_aton(text: str) -> list[int] | None:
    """FreeBSD ``ether_aton``: ``sscanf(" %x:%x:%x:%x:%x:%x")`` must convert six groups."""
    octets: list[int] = []
    pos = 0
    for index in range(6):
        if index:
            if not text.startswith(":", pos):
                return None
            pos += 1
        got = scan_hex(text, pos)
        if got is None:
            return None
        octets.append(got[0] & 0xFF)
        pos = got[1]
    return octets


def load_rom(cfg: Config, rom: str | None, varfile: str | None) -> bool:
    """``bootrom_loadrom`` (usr.sbin/bhyve/bootrom.c): sizes of the ROM and the VARS file."""
    if rom is None:
        return True
    local = paths.host_path(rom)
    if rom == "" or not os.path.isfile(local):
        eprint(f'Error opening bootrom "{rom}": No such file or directory')
        return False
    size = os.path.getsize(local)
    if size == 0 or size > ROM_MAX:
        eprint(f"ROM size {size} is invalid")
        return False
    if size % PAGE:
        eprint(f"ROM size {size} is not a multiple of the page size")
        return False
    if varfile is not None:
        vlocal = paths.host_path(varfile)
        if varfile == "" or not os.path.isfile(vlocal):
            eprint(f'Error opening bootrom variable file "{varfile}": No such file or directory')
            return False
        if not os.access(vlocal, os.R_OK | os.W_OK):
            eprint(f'Error opening bootrom variable file "{varfile}": Permission denied')
            return False
        vsize = os.path.getsize(vlocal)
        if vsize != 0 and not PAGE <= vsize <= ROM_MAX:
            eprint(f"Invalid bootrom variable size {vsize}")
            return False
        if size + vsize > ROM_MAX:
            eprint(f"Invalid bootrom and variable aggregate size {size + vsize}")
            return False
    return True


# ---------------------------------------------------------------------------------------------------------
# main


def parse(args: list[str], release: str, snapshot: bool = False) -> Parser:
    """Options left to right, then the name (``main()``, bhyverun.c); ``-r`` only in a snapshot build."""
    parser = Parser(release)
    getopt = Getopt(args, (OPTSTRING_14 if release == "14" else OPTSTRING_15) + ("r:" if snapshot else ""))
    try:
        for opt, val in getopt:
            if opt in FLAG_KEYS:
                parser.cfg.set(*FLAG_KEYS[opt])
            elif opt in ("A", "I"):
                pass
            elif opt == "h":
                usage(release, 0, snapshot)
            elif opt == "r" and val is not None:
                parser.restore = val
            elif val is None:
                raise AssertionError(opt)
            elif opt == "c":
                parser.topology(val)
            elif opt == "m":
                parser.cfg.set("memory.size", val)
            elif opt == "p":
                parser.pin(val)
            elif opt == "o":
                parser.option(val)
            elif opt == "k":
                parser.config_file(val)
            elif opt == "l":
                parser.lpc(val)
            elif opt == "s":
                parser.slot(val)
            elif opt == "f":
                parser.fwcfg(val)
            elif opt == "G":
                parser.gdb(val)
            elif opt == "K":
                parser.cfg.set("keyboard.layout", val)
            elif opt == "U":
                parser.cfg.set("uuid", val)
            elif opt == "n":
                parser.numa(val)
    except GetoptError as exc:
        warn(PROG, str(exc))
        usage(release, 1, snapshot)
    cfg = parser.cfg
    if release != "14":
        for old, new in (("lpc.bootrom", "bootrom"), ("lpc.bootvars", "bootvars")):
            if cfg.raw(old) is not None and cfg.raw(new) is None:
                warn(PROG, f"{old} is deprecated, use '-o {new}' instead")
                cfg.set(new, cfg.raw(old) or "")
    if len(getopt.operands) > 1:
        usage(release, 1)
    if getopt.operands:
        cfg.set("name", getopt.operands[0])
    elif cfg.raw("name") is None:
        usage(release, 1)
    return parser


def main(args: list[str]) -> int:
    """``bhyve [options] vmname``."""
    loaded = state.load()
    release = str(loaded.get("release", "14"))
    parser = parse(args, release, bool(loaded.get("snapshot")))
    cfg = parser.cfg
    checkpoint = read_checkpoint(parser.restore) if parser.restore is not None else None
    if cfg.boolean("config.dump", False):
        print("\n".join(cfg.dump()))
        return 1
    cpus, sockets, cores, threads = topology(cfg)
    check_cpusets(cfg, cpus)
    memtext = cfg.value("memory.size") or ""
    memsize = parse_memsize(memtext)
    if memsize is None:
        fail(f"invalid memsize '{memtext}'", EX_USAGE)
    assert memsize is not None
    name = cfg.value("name") or ""
    rom = cfg.value(parser.rom_key)
    with state.transaction() as st:
        vmm.prune_running(st)
        init = Init(cfg, st, name, release)
        try:
            startup(init, cpus, memsize, rom, parser)
        except ToolExit:
            vmm.release_nmdm(st)
            for tap in init.taps:
                iface = st["interfaces"].get(tap)
                if iface is not None:
                    iface["opened_by"] = None
                    if "RUNNING" in iface["flags"]:
                        iface["flags"].remove("RUNNING")
            raise
        if checkpoint is not None:
            check_restore(checkpoint, cpus, memsize)
        if not IN_OWN_PROCESS:
            raise RuntimeError(f"bhyve {name} would start a guest in the test process; use SimHost.start()")
        # Catch signals before the running record is published: a SIGTERM sent as soon as the VM shows
        # as running is then the power button, not the default action killing the stand-in.
        catch_signals()
        vminfo = vmm.read_vm(name) or {}
        st["running"][name] = {
            "name": name, "pid": os.getpid(), "starttime": proc_starttime(os.getpid()),
            "argv": ["bhyve", *args], "started": time.time(), "cwd": os.getcwd(),
            "cpus": cpus, "topology": [sockets, cores, threads], "memsize": memsize,
            "wired": cfg.boolean("memory.wired", False), "bootrom": rom, "taps": init.taps,
            "files": init.files, "ppt": init.ppt, "fbuf": init.fbuf,
            "generation": vminfo.get("generation"), "config": cfg.dump(),
            # The guest's own identity: a fresh boot gets a new one, a restore keeps the saved guest's.
            "guest_boot": checkpoint["guest_boot"] if checkpoint is not None else os.urandom(8).hex(),
            "booted": checkpoint["booted"] if checkpoint is not None else time.time(),
            "restored_from": parser.restore,
            "jail": (jails.jail_of(st) or {}).get("name"),
        }
        st["running"][name]["nmdm"] = [p for p, holders in st.get("nmdm", {}).items() if vmm.me() in holders]
    no_firmware = release == "14" and rom is not None and not init.rom_loaded
    return guest_loop(name, vminfo.get("generation"), cfg.boolean("destroy_on_poweroff", False),
                      init.sockets, no_firmware)


def read_checkpoint(path: str) -> dict[str, Any]:
    """``-r FILE``: FILE, FILE.kern and FILE.meta must all be there; the index is FILE.meta
    (``load_restore_file``, usr.sbin/bhyve/snapshot.c); a failure exits 1 before the VM is opened."""
    import json

    local = paths.host_path(path)
    try:
        for suffix in ("", ".kern"):
            with open(local + suffix, "rb"):
                pass
        with open(local + ".meta", encoding="utf-8") as fh:
            meta = json.load(fh)
        if not isinstance(meta, dict) or "guest_boot" not in meta:
            raise ValueError(path)
    except (OSError, ValueError):
        eprint(f"Failed to read checkpoint info from file: '{path}'.")
        raise ToolExit(1) from None
    return meta


def check_restore(meta: dict[str, Any], cpus: int, memsize: int) -> None:
    """The machine on the command line must be the one saved: the same vCPUs and memory (the memory
    segments are restored as they are; bhyve gives up on a mismatch, exit 1)."""
    if int(meta.get("memsize", -1)) != memsize:
        eprint("Failed to restore VM memory.")
        raise ToolExit(1)
    if int(meta.get("ncpus", -1)) != cpus:
        eprint("Failed to restore kernel structs.")
        raise ToolExit(1)


def write_checkpoint(name: str, request: dict[str, Any]) -> bool:
    """``vm_checkpoint``: FILE (memory), FILE.kern and FILE.meta; False when a file cannot be written (the
    guest then runs on, as bhyve resumes the vCPUs after a failed checkpoint)."""
    import json

    rec = state.load().get("running", {}).get(name) or {}
    local = paths.host_path(str(request.get("file", "")))
    meta = {"vmname": name, "ncpus": rec.get("cpus"), "memsize": rec.get("memsize"),
            "guest_boot": rec.get("guest_boot"), "booted": rec.get("booted"), "saved": time.time()}
    try:
        with open(local + ".kern", "wb") as fh:
            fh.write(b"simhost vcpu and device state\n")
        with open(local, "wb") as fh:
            fh.write(f"simhost guest memory of {name} ({rec.get('guest_boot')})\n".encode())
        with open(local + ".meta", "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
    except OSError as error:
        eprint(f"Failed to create checkpoint file: {error.strerror}")
        return False
    return True


def startup(init: Init, cpus: int, memsize: int, rom: str | None, parser: Parser) -> None:
    """``main()`` of bhyverun.c from opening the VM to running it, under the state lock."""
    cfg, st, name, release = init.cfg, init.st, init.name, init.release
    # 7. open or create the VM
    if not kld.is_loaded(st, "vmm"):
        if release == "14":
            fail("vm_create: No such file or directory", prefix=False)
        fail("vm_openf: No such file or directory")
    if len(name.encode()) > vmm.VM_MAX_NAMELEN or "/" in name or name in ("", ".", ".."):
        if release == "14":
            fail("vm_create: Invalid argument", prefix=False)
        fail("vm_openf: Invalid argument")
    jailed = jails.vm_error(st, name)  # a jailed bhyve: allow.vmm, and /dev/vmm/NAME in the jail's devfs
    if jailed == "Operation not permitted":
        fail(f"vm_create: {jailed}" if release == "14" else f"vm_openf: {jailed}", prefix=release != "14")
    existing = vmm.read_vm(name)
    running = vmm.live_running(st)
    if jailed is not None:
        if existing is None:
            vmm.create_vm(name, "bhyve")  # created by the kernel, then not found in the jail's /dev
        fail(f"vm_open: {jailed}" if release == "14" else f"vm_openf: {jailed}", prefix=release != "14")
    if existing is None:
        if release != "14" and rom is None:
            fail("no bootrom was configured")
        info = vmm.create_vm(name, "bhyve")
        if rom is None:
            fail("virtual machine cannot be booted", prefix=False)
    else:
        info = existing
        if name in running:
            if rom is not None:
                fail("vm_reinit: Device busy", prefix=False)
            eprint("could not activate CPU 0")
            raise ToolExit(EX_OSERR)
        if rom is not None:
            info = vmm.reinit_vm(name, existing)
    # 8. vCPUs, memory, NUMA, platform
    maxcpu = strtol_strict(st["sysctl"].get("hw.vmm.maxcpu", "1"), 10) or 1
    if cpus > maxcpu:
        fail(f"{cpus} vCPUs requested but only {maxcpu} available", prefix=False)
    wired = cfg.boolean("memory.wired", False)
    physmem = strtol_strict(st["sysctl"].get("hw.physmem", "0"), 10) or 0
    if memsize == 0 or memsize % PAGE or (info.get("memsize") not in (None, memsize)):
        fail("Unable to setup memory (22)", prefix=False)
    wired_limit = (strtol_strict(st["sysctl"].get("vm.max_user_wired", "0"), 10) or 0) \
        * (strtol_strict(st["sysctl"].get("hw.pagesize", "4096"), 10) or 4096)
    if wired and ((physmem and memsize > physmem) or (wired_limit and memsize > wired_limit)):
        fail("Unable to setup memory (12)", prefix=False)  # ENOMEM: vm.max_user_wired caps wired memory
    info.update({"memsize": memsize, "wired": wired, "cpus": cpus})
    vmm.write_vm(name, info)
    if release != "14":
        check_numa(cfg, memsize)
        if rom is not None:
            if not load_rom(cfg, rom, cfg.value("bootvars")):
                raise ToolExit(EXIT_ERROR)
            init.rom_loaded = True
    # 9. devices
    init.run_all()
    # 10. ROM boot needs unrestricted guest (Intel), TPM, GDB, SMBIOS
    for key in GLOBAL_BOOLS:
        cfg.boolean(key, False)
    if rom is not None and st["sysctl"].get("hw.vmm.vmx.initialized") == "1" \
            and st["sysctl"].get("hw.vmm.vmx.cap.unrestricted_guest") != "1":
        eprint("ROM boot failed: unrestricted guest capability not available")
        raise ToolExit(EXIT_ERROR)
    if cfg.find_node("tpm") is not None:
        check_tpm(cfg)
    port = cfg.value("gdb.port")
    if port is not None and port != "0":
        number = strtol_strict(port, 10)
        if number is None or not 0 < number <= 65535:
            fail("gdb address resolve: Servname not supported for ai_socktype", 1)
    uuid_text = cfg.value("uuid")
    if uuid_text is not None and uuid_text != "":
        import re

        if not re.fullmatch(UUID_RE, uuid_text):
            raise ToolExit(EXIT_ERROR)


def check_numa(cfg: Config, memsize: int) -> None:
    """``-n`` domains (15): numbered from 0 without gaps; sizes add up to ``-m``; each has cpus."""
    domains = cfg.find_node("domains")
    if not domains:
        return
    total = 0
    index = 0
    while str(index) in domains:
        size = cfg.value(f"domains.{index}.size")
        if size is None:
            fail(f"Missing memory size for domain {index}", prefix=False)
        number = expand_number(size or "") if parse_memsize(size or "") is None else parse_memsize(size or "")
        if number is None:
            fail(f"invalid memsize '{size}'", EX_USAGE)
        total += number or 0
        if cfg.value(f"domains.{index}.cpus") is None:
            fail(f"Missing CPU set for domain {index}", prefix=False)
        index += 1
    if total != memsize:
        fail("Total NUMA domain memory size does not match provided VM memsize", EX_USAGE)


def check_tpm(cfg: Config) -> None:
    """``-l tpm,passthru|swtpm,PATH``: the device or the swtpm socket must exist; TPM 2.0 only."""
    import stat

    kind = cfg.value("tpm.type")
    path = cfg.value("tpm.path") or ""
    version = cfg.value("tpm.version") or "2.0"
    local = paths.host_path(path)
    ok = version == "2.0"
    if kind == "passthru":
        ok = ok and os.path.exists(local)
    elif kind == "swtpm":
        try:
            ok = ok and stat.S_ISSOCK(os.stat(local).st_mode)
        except OSError:
            ok = False
    else:
        ok = False
    if not ok:
        fail("Failed to init TPM device", prefix=False)


# ---------------------------------------------------------------------------------------------------------
# the running guest


def set_title(name: str) -> None:
    """``setproctitle("%s", vmname)`` (bhyverun.c): ``pgrep -x bhyve`` and ``pgrep -fx 'bhyve: NAME'`` work.

    On Linux the command line is the process's own argv area, so it is rewritten in place (the area
    shrinks to the title, as FreeBSD's setproctitle does); the short name goes through prctl(PR_SET_NAME).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, b"bhyve", 0, 0, 0)
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        title = f"bhyve: {name}".encode()
        size = end - start
        if size <= 1:
            return
        title = title[:size - 1]
        ctypes.memmove(start, title + b"\0" * (size - len(title)), size)
    except (OSError, AttributeError, ValueError, IndexError):
        pass


class Guest:
    """Signal bookkeeping for the wait loop (handlers only set flags)."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def handler(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)


GUEST = Guest()


def catch_signals() -> Guest:
    """Route SIGTERM/SIGINT/SIGHUP to the guest's flag list (idempotent)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, GUEST.handler)
    return GUEST


def guest_loop(name: str, generation: str | None, destroy_on_poweroff: bool, keep: list[Any],
               no_firmware: bool) -> int:
    """Wait for the guest to end (control file, signal, VM destroyed) and clean up."""
    guest = catch_signals()
    set_title(name)
    exit_file = paths.control(name + ".exit")
    acpi_file = paths.control(name + ".acpi")
    checkpoint_file = paths.control(name + ".checkpoint")
    status: int | None = None
    if no_firmware:
        eprint("simhost: the boot ROM was never loaded (14.x loads it from the lpc device); "
               "the guest triple-faults")
        status = 3
    while status is None:
        while guest.signals:
            sig = guest.signals.pop(0)
            if sig == signal.SIGTERM:
                mode = _read_text(acpi_file) or "poweroff"
                if mode == "ignore":
                    continue
                if mode == "off":
                    _finish(name)
                    _crash(signal.SIGTERM)
                status = 1
            else:
                _finish(name)
                _crash(sig)
            break
        if status is not None:
            break
        request = _take(checkpoint_file)
        if request is not None:
            import json

            wanted = json.loads(request)
            if write_checkpoint(name, wanted) and wanted.get("suspend"):
                vmm.destroy_vm(name)  # vm_checkpoint: vm_destroy(ctx); exit(0)
                status = 0
                break
        text = _take(exit_file)
        if text is not None:
            got = scan_pattern(text, ["%d"])
            status = got[0] if got else EXIT_ERROR
            break
        info = vmm.read_vm(name)
        if info is None or (generation is not None and info.get("generation") != generation):
            eprint("vm_run error -1, errno 6")
            status = 1
            break
        time.sleep(POLL)
    if status == 1 and destroy_on_poweroff:
        vmm.destroy_vm(name)
    _finish(name)
    for sock in keep:
        sock.close()
    return status


def _read_text(path: Any) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _take(path: Any) -> str | None:
    """Read and remove a control file (only one reader wins: the rename is atomic)."""
    claimed = f"{path}.{os.getpid()}"
    try:
        os.rename(path, claimed)
    except OSError:
        return None
    text = _read_text(claimed)
    os.unlink(claimed)
    return text


def _finish(name: str) -> None:
    """Remove the running record and give back consoles and taps (the VM itself stays)."""
    with state.transaction() as st:
        rec = st["running"].get(name)
        if rec is not None and rec.get("pid") == os.getpid():
            del st["running"][name]
        vmm.release_nmdm(st)
        mine = vmm.me()
        for iface in st["interfaces"].values():
            if iface.get("opened_by") == mine:
                iface["opened_by"] = None
                if "RUNNING" in iface["flags"]:
                    iface["flags"].remove("RUNNING")


def bhyve_main() -> int:
    """Entry point of ``bin/bhyve``."""
    return run(main)
