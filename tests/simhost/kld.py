"""``kldstat``, ``kldload`` and ``kldunload`` (kldstat(8), kldload(8), kldunload(8)).

hivectl checks modules (vmm, nmdm, if_bridge, if_tuntap) before it starts guests, and other stand-ins
depend on them: without vmm.ko there is no ``hw.vmm.*`` sysctl and no VM can be created, without nmdm.ko
``/dev/nmdm*`` cannot be opened. The state keeps the list of loaded files with the modules each one
contains (``if_tuntap.ko`` also answers to ``if_tap`` and ``if_tun``, as on FreeBSD 13+).
"""

from __future__ import annotations

import sys
from typing import Any

from . import paths, state
from .common import Getopt, GetoptError, die, run, warn

# file (without .ko) -> (modules it contains, size)
KNOWN_FILES: dict[str, tuple[list[str], int]] = {
    "vmm": (["vmm"], 0x3D8C28),
    "nmdm": (["nmdm"], 0x4A10),
    "if_bridge": (["if_bridge"], 0x7E60),
    "if_tuntap": (["if_tuntap", "if_tun", "if_tap"], 0x9C40),
    "if_vxlan": (["if_vxlan"], 0xA3B8),
    "if_epair": (["if_epair"], 0x4F20),
    "if_lagg": (["if_lagg"], 0xB2F0),
    "zfs": (["zfs", "zfsctrl"], 0x5C4F48),
    "pf": (["pf"], 0x58B70),
    "pflog": (["pflog"], 0x3A20),
    "ipfw": (["ipfw"], 0x27D10),
    "ipfw_nat": (["ipfw_nat"], 0x2E48),
    "netgraph": (["netgraph"], 0x19A40),
    "ng_bridge": (["ng_bridge"], 0x6A08),
    "ng_ether": (["ng_ether"], 0x5F98),
    "ng_socket": (["ng_socket"], 0x7B20),
    "linux64": (["linux64elf"], 0x2D5C8),
    "filemon": (["filemon"], 0x3BA0),
    "cryptodev": (["cryptodev"], 0x2C60),
    "iscsi": (["iscsi"], 0x20F00),
    "virtio_p9fs": (["virtio_p9fs"], 0x4C30),
}

# modules compiled into a GENERIC kernel: loading them reports "already loaded or in kernel"
KERNEL_MODULES = ["if_vlan", "if_gif", "if_lo", "ether", "ahci", "nvme", "if_em", "ctl"]


def _normalise(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base[:-3] if base.endswith(".ko") else base


def loaded_modules(st: dict[str, Any]) -> set[str]:
    """All module names present (kernel-builtin ones included)."""
    names = set(KERNEL_MODULES)
    for entry in st["kld"]["loaded"]:
        names.update(entry["modules"])
    return names


def is_loaded(st: dict[str, Any], module: str) -> bool:
    """Whether ``modfind(module)`` would succeed."""
    return module in loaded_modules(st)


def load_into(st: dict[str, Any], name: str) -> str | None:
    """Load ``name`` into ``st``; returns an error text (``kldload`` wording) or None."""
    base = _normalise(name)
    if base not in KNOWN_FILES:
        if base in KERNEL_MODULES:
            return "module already loaded or in kernel"
        return "No such file or directory"
    if any(entry["file"] == base + ".ko" for entry in st["kld"]["loaded"]):
        return "module already loaded or in kernel"
    modules, _size = KNOWN_FILES[base]
    st["kld"]["loaded"].append({"id": st["kld"]["next_id"], "file": base + ".ko", "modules": modules})
    st["kld"]["next_id"] += 1
    return None


def _address(index: int) -> int:
    return 0xFFFFFFFF80200000 + index * 0x200000


def _kldstat(args: list[str]) -> int:
    prog = "kldstat"
    quiet = verbose = False
    module: str | None = None
    filename: str | None = None
    parser = Getopt(args, "dhi:m:n:qv")
    try:
        for opt, val in parser:
            if opt == "q":
                quiet = True
            elif opt == "v":
                verbose = True
            elif opt == "m":
                module = val
            elif opt == "n":
                filename = val
            elif opt in ("h", "d", "i"):
                pass
    except GetoptError as exc:
        warn(prog, str(exc))
        _kldstat_usage()
    if parser.operands:
        _kldstat_usage()
    st = state.load()
    if module is not None:
        for entry in st["kld"]["loaded"]:
            if module in entry["modules"]:
                if not quiet:
                    print("Id  Refs Name")
                    print(f"{entry['id']:3d} {1:5d} {module}")
                return 0
        if module in KERNEL_MODULES:
            if not quiet:
                print("Id  Refs Name")
                print(f"{1:3d} {1:5d} {module}")
            return 0
        if quiet:
            return 1
        die(prog, f"can't find module {module}: No such file or directory", 1)
    entries = st["kld"]["loaded"]
    if filename is not None:
        wanted = _normalise(filename) + (".ko" if _normalise(filename) != "kernel" else "")
        entries = [e for e in entries if e["file"] == wanted]
        if not entries:
            if quiet:
                return 1
            die(prog, f"can't find file {filename}: No such file or directory", 1)
    print("Id Refs Address                Size Name")
    for entry in entries:
        size = 0x1F30590 if entry["file"] == "kernel" else KNOWN_FILES[entry["file"][:-3]][1]
        refs = len(st["kld"]["loaded"]) if entry["file"] == "kernel" else 1
        print(f"{entry['id']:2d} {refs:4d} 0x{_address(entry['id']):016x} {size:8x} {entry['file']}")
        if verbose:
            print("\tContains modules:")
            print("\t\t Id Name")
            for mod in entry["modules"]:
                print(f"\t\t{entry['id']:3d} {mod}")
    return 0


def _kldstat_usage() -> None:
    print("usage: kldstat [-dhqv] [-i id] [-n filename]", file=sys.stderr)
    print("       kldstat [-dq] [-m modname]", file=sys.stderr)
    die(None, None, 1)


def _kldload(args: list[str]) -> int:
    prog = "kldload"
    only_new = quiet = verbose = False
    parser = Getopt(args, "nqv")
    try:
        for opt, _val in parser:
            if opt == "n":
                only_new = True
            elif opt == "q":
                quiet = True
            elif opt == "v":
                verbose = True
    except GetoptError as exc:
        warn(prog, str(exc))
        print("usage: kldload [-nqv] file ...", file=sys.stderr)
        return 1
    if not parser.operands:
        print("usage: kldload [-nqv] file ...", file=sys.stderr)
        return 1
    status = 0
    with state.transaction() as st:
        for name in parser.operands:
            error = load_into(st, name)
            if error is None:
                if verbose:
                    print(f"Loaded {name}, id={st['kld']['next_id'] - 1}")
                continue
            if only_new and error.startswith("module already"):
                continue
            if not quiet:
                warn(prog, f"can't load {name}: {error}")
            status = 1
    return status


def _kldunload(args: list[str]) -> int:
    prog = "kldunload"
    by_id = False
    parser = Getopt(args, "finv")
    try:
        for opt, _val in parser:
            if opt == "i":
                by_id = True
    except GetoptError as exc:
        warn(prog, str(exc))
        print("usage: kldunload [-fv] -i id ...\n       kldunload [-fv] [-n] name ...", file=sys.stderr)
        return 1
    if not parser.operands:
        print("usage: kldunload [-fv] -i id ...\n       kldunload [-fv] [-n] name ...", file=sys.stderr)
        return 1
    status = 0
    with state.transaction() as st:
        for name in parser.operands:
            loaded = st["kld"]["loaded"]
            if by_id:
                match = [e for e in loaded if str(e["id"]) == name]
            else:
                match = [e for e in loaded if e["file"] == _normalise(name) + ".ko"]
            if not match or match[0]["file"] == "kernel":
                warn(prog, f"can't find file {name}")
                status = 1
                continue
            entry = match[0]
            if "vmm" in entry["modules"]:
                vmm_dir = paths.root() / "dev" / "vmm"
                if vmm_dir.is_dir() and any(vmm_dir.iterdir()):
                    warn(prog, "can't unload file: Device busy")
                    status = 1
                    continue
            loaded.remove(entry)
    return status


def kldstat_main() -> int:
    """Entry point of ``bin/kldstat``."""
    return run(_kldstat)


def kldload_main() -> int:
    """Entry point of ``bin/kldload``."""
    return run(_kldload)


def kldunload_main() -> int:
    """Entry point of ``bin/kldunload``."""
    return run(_kldunload)
