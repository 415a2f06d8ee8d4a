"""``sysctl(8)`` (sysctl(8)).

hivectl reads ``hw.vmm.maxcpu``, ``hw.vmm.vmx.*``, ``hw.vmm.svm.features``, ``hw.vmm.iommu.enable``,
``hw.vmm.amdvi.enable``, ``hw.model``, ``hw.physmem``, ``vm.max_user_wired``, ``kern.vm_guest`` and sets
``net.link.tap.up_on_open``. Values live in the state; a subtree exists only while the module that
provides it is loaded (no vmm.ko, no ``hw.vmm.*``: FreeBSD reports such an oid as unknown), and only
the oids listed as writable accept a new value. Writing a VM name to ``hw.vmm.create`` /
``hw.vmm.destroy`` creates or destroys that VM, as on 14.x.
"""

from __future__ import annotations

import sys
from typing import Any

from . import kld, state, vmm
from .common import Getopt, GetoptError, die, run, strtol_strict, warn

PROG = "sysctl"
# oid prefix -> module that must be loaded for it to exist
MODULE_OIDS = {"hw.vmm.": "vmm", "net.link.tap.": "if_tuntap", "net.link.bridge.": "if_bridge",
               "kern.geom.": "kernel"}
STRING_OIDS = {"kern.ostype", "kern.osrelease", "kern.hostname", "kern.vm_guest", "kern.geom.conftxt",
               "hw.machine", "hw.model", "hw.vmm.create", "hw.vmm.destroy"}


def visible(st: dict[str, Any]) -> dict[str, str]:
    """The oids that exist right now, given the loaded modules."""
    loaded = kld.loaded_modules(st)
    loaded.add("kernel")
    out: dict[str, str] = {}
    for key, value in st["sysctl"].items():
        needed = next((mod for prefix, mod in MODULE_OIDS.items() if key.startswith(prefix)), None)
        if needed is None or needed in loaded:
            out[key] = value
    return out


def _usage() -> None:
    print("usage: sysctl [-bdehiNnoqTtWx] [ -B <bufsize> ] [-f filename] name[=value] ...\n"
          "       sysctl [-bdehNnoqTtWx] [ -B <bufsize> ] -a", file=sys.stderr)
    die(None, None, 1)


def _show(name: str, value: str, opts: set[str]) -> None:
    if "N" in opts:
        print(name)
    elif "b" in opts:
        sys.stdout.write(value)
    elif "n" in opts:
        print(value)
    elif "e" in opts:
        print(f"{name}={value}")
    else:
        print(f"{name}: {value}")


def _set(st: dict[str, Any], oids: dict[str, str], name: str, new: str, opts: set[str]) -> int:
    if name not in oids:
        if "i" not in opts:
            warn(PROG, f"unknown oid '{name}'")
            return 1
        return 0
    if name not in st["sysctl_rw"]:
        warn(PROG, f"oid '{name}' is read only")
        return 1
    old = st["sysctl"][name]
    if name in ("hw.vmm.create", "hw.vmm.destroy"):
        if name.endswith("create"):
            if vmm.vm_exists(new):
                warn(PROG, f"{name}={new}: File exists")
                return 1
            if len(new.encode()) > vmm.VM_MAX_NAMELEN or not new:
                warn(PROG, f"{name}={new}: Invalid argument")
                return 1
            vmm.create_vm(new, "sysctl")
        elif not vmm.destroy_vm(new):
            warn(PROG, f"{name}={new}: Invalid argument")
            return 1
        shown_new = old
    elif name in STRING_OIDS:
        st["sysctl"][name] = new
        shown_new = new
    else:
        if strtol_strict(new, 0) is None:
            warn(PROG, f"invalid integer '{new}'")
            return 1
        st["sysctl"][name] = str(strtol_strict(new, 0))
        shown_new = st["sysctl"][name]
    if "q" not in opts:
        prefix = "" if "n" in opts else f"{name}: "
        print(f"{prefix}{old} -> {shown_new}")
    return 0


def main(args: list[str]) -> int:
    """``sysctl [-abeiNnq] name[=value] ...``."""
    opts: set[str] = set()
    parser = Getopt(args, "AabB:def:hiNnoqTtWXx")
    try:
        for opt, _val in parser:
            opts.add(opt)
    except GetoptError as exc:
        warn(PROG, str(exc))
        _usage()
    names = parser.operands
    if not names and "a" not in opts:
        _usage()
    writing = any("=" in n for n in names)
    status = 0
    if writing:
        with state.transaction() as st:
            oids = visible(st)
            for arg in names:
                if "=" in arg:
                    key, new = arg.split("=", 1)
                    status |= _set(st, oids, key, new, opts)
                else:
                    status |= _get(oids, arg, opts)
        return status
    st = state.load()
    oids = visible(st)
    if "a" in opts and not names:
        for key in sorted(oids):
            _show(key, oids[key], opts)
        return 0
    for arg in names:
        status |= _get(oids, arg, opts)
    return status


def _get(oids: dict[str, str], name: str, opts: set[str]) -> int:
    if name in oids:
        _show(name, oids[name], opts)
        return 0
    below = sorted(k for k in oids if k.startswith(name + "."))
    if below:
        for key in below:
            _show(key, oids[key], opts)
        return 0
    if "i" in opts:
        return 0
    warn(PROG, f"unknown oid '{name}'")
    return 1


def sysctl_main() -> int:
    """Entry point of ``bin/sysctl``."""
    return run(main)
