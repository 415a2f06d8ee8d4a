"""``grub-bhyve`` from sysutils/grub2-bhyve: the GRUB loader for Linux/OpenBSD/NetBSD guests.

Unlike bhyve and bhyveload it parses with GNU argp: options may follow the VM name, long options may be
abbreviated, ``-H`` takes an optional attached argument, and argp's own errors exit 64. A bad ``-M`` and a
missing VM name exit 1. Extra positional arguments are not refused: the last one is the VM name.

What a simulator can check before GRUB would take over the console: the console device, the device map
(``(hdN) path`` / ``(cdN) path`` lines naming files that exist), a ``grub.cfg`` in ``-d`` for ``-r host``,
that the ``-r`` disk is in the map, and the VM set-up (vmm loaded, unrestricted guest on Intel, no
running bhyve, matching memory). Where real GRUB would stop at its interactive prompt (no config, root
disk missing) the stand-in exits 1 with GRUB's error text instead of hanging. Success creates or
re-initialises ``/dev/vmm/NAME``; the status is 0 unless ``control/NAME.loader_exit`` says otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from . import jails, kld, paths, state, vmm
from .common import ToolExit, parse_memsize, run

PROG = "grub-bhyve"
EX_USAGE = 64
# long name -> (short letter, takes argument: "yes" | "no" | "optional")
LONG = {"root": ("r", "yes"), "device-map": ("m", "yes"), "directory": ("d", "yes"), "grub-cfg": ("g", "yes"),
        "cons-dev": ("c", "yes"), "memory": ("M", "yes"), "evga": ("e", "no"), "ncons": ("n", "no"),
        "verbose": ("v", "no"), "hold": ("H", "optional"), "help": ("?", "no"), "usage": ("U", "no"),
        "version": ("V", "no")}
SHORT = {"r": "yes", "m": "yes", "d": "yes", "g": "yes", "c": "yes", "M": "yes", "e": "no", "n": "no",
         "S": "no", "v": "no", "H": "optional", "?": "no", "V": "no"}
HINT = f"Try `{PROG} --help' or `{PROG} --usage' for more information."
ROOT_RE = re.compile(r"^(host|cd[0-9]+|hd[0-9]+(,((msdos|gpt|bsd)?[0-9]+)(,((msdos|gpt|bsd)?[a-z0-9]+))?)?)$")
HELP = """Usage: grub-bhyve [OPTION...] vmname
GRUB emulator.

  -c, --cons-dev=cons-dev    a tty(4) device to use for terminal I/O
  -d, --directory=DIR        use GRUB files in the directory DIR [default=/boot/grub]
  -e, --evga                 exclude VGA rows/cols from bootinfo
  -g, --grub-cfg=FILE        use FILE as grub.cfg, relative to the directory specified by -d
  -H, --hold[=SECS]          wait until a debugger will attach
  -m, --device-map=FILE      use FILE as the device map [default=/boot/grub/device.map]
  -M, --memory=MBYTES        guest RAM in MB [default=256]
  -n, --ncons                don't insert console=ttyS0 into Linux command line
  -r, --root=DEVICE_NAME     Set root device.
  -S                         wire guest memory
  -v, --verbose              print verbose messages.
  -?, --help                 give this help list
      --usage                give a short usage message
  -V, --version              print program version

Mandatory or optional arguments to long options are also mandatory or optional
for any corresponding short options."""


def argp_error(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)
    print(HINT, file=sys.stderr)
    raise ToolExit(EX_USAGE)


def handle(opt: str, val: str | None, got: dict[str, Any]) -> None:
    """Act on one option at its position (a bad -M wins over later argp errors)."""
    if opt == "?":
        print(HELP)
        raise ToolExit(0)
    if opt == "U":
        print("Usage: grub-bhyve [-enSv?V] [-c cons-dev] [-d DIR] [-g FILE] [-H[SECS]] [-m FILE]\n"
              "            [-M MBYTES]\n"
              "            [-r DEVICE_NAME] [--cons-dev=cons-dev] [--directory=DIR] [--evga]\n"
              "            [--grub-cfg=FILE] [--hold[=SECS]] [--device-map=FILE] [--memory=MBYTES]\n"
              "            [--ncons] [--root=DEVICE_NAME] [--verbose] [--help] [--usage] [--version]\n"
              "            vmname")
        raise ToolExit(0)
    if opt == "V":
        print("grub-bhyve (GRUB-BHYVE) 2.00:0.30")
        raise ToolExit(0)
    if opt == "M":
        size = parse_memsize(val or "")
        if size is None:
            print(f"Invalid guest memory size `{val}'.", file=sys.stderr)
            print("Error in parsing command line arguments", file=sys.stderr)
            raise ToolExit(1)
        got["memsize"] = size
        return
    got[opt] = val if val is not None else True


def parse(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """glibc-style permuting getopt_long as used by argp."""
    got: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            matches = [n for n in LONG if n == name] or [n for n in LONG if n.startswith(name)]
            if not matches:
                argp_error(f"unrecognized option '--{name}'")
            if len(matches) > 1:
                argp_error(f"option '--{name}' is ambiguous; possibilities:"
                           + "".join(f" '--{m}'" for m in matches))
            letter, kind = LONG[matches[0]]
            if kind == "no" and eq:
                argp_error(f"option '--{matches[0]}' doesn't allow an argument")
            if kind == "yes" and not eq:
                if i >= len(args):
                    argp_error(f"option '--{matches[0]}' requires an argument")
                value = args[i]
                i += 1
            handle(letter, value if (eq or kind == "yes") else None, got)
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                kind = SHORT.get(letter)
                if kind is None:
                    argp_error(f"invalid option -- '{letter}'")
                if kind == "no":
                    handle(letter, None, got)
                    j += 1
                    continue
                rest = arg[j + 1:]
                if rest:
                    handle(letter, rest, got)
                elif kind == "optional":
                    handle(letter, None, got)
                elif i < len(args):
                    handle(letter, args[i], got)
                    i += 1
                else:
                    argp_error(f"option requires an argument -- '{letter}'")
                break
            continue
        positional.append(arg)
    return got, positional


def fatal(msg: str) -> None:
    """GRUB's ``grub_util_error``: ``grub-bhyve: error: msg.``, exit 1."""
    print(f"{PROG}: error: {msg}.", file=sys.stderr)
    raise ToolExit(1)


def read_device_map(path: str, explicit: bool) -> dict[str, str]:
    """``(hd0) /path`` lines; '#' comments and blank lines are skipped."""
    local = paths.host_path(path)
    try:
        with open(local, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        if explicit:
            fatal(f"cannot open `{path}': No such file or directory")
        return {}
    drives: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("("):
            fatal(f"{path}:{number}: No open parenthesis found")
        close = line.find(")")
        if close == -1:
            fatal(f"{path}:{number}: No close parenthesis found")
        drive = line[1:close]
        if not re.fullmatch(r"(hd|cd)[0-9]+", drive):
            fatal(f"{path}:{number}: Bad device name `{drive}'")
        target = line[close + 1:].strip()
        if not target:
            fatal(f"{path}:{number}: No filename found")
        if not os.path.exists(paths.host_path(target)):
            fatal(f"{path}:{number}: cannot get the real path of `{target}'")
        drives[drive] = target
    return drives


def main(args: list[str]) -> int:
    """``grub-bhyve [-r root] [-m map] [-d dir] [-g cfg] [-c cons] [-M mem] [-enSv] vmname``."""
    got, positional = parse(args)
    if not positional:
        print(f"{PROG}: Required VM name parameter not supplied", file=sys.stderr)
        print(HINT, file=sys.stderr)
        return 1
    name = positional[-1]
    memsize = int(got.get("memsize", 256 << 20))
    root_dev = str(got.get("r", "host"))
    directory = str(got.get("d", "/boot/grub"))
    cfgname = str(got.get("g", "grub.cfg"))
    console = got.get("c")
    with state.transaction() as st:
        vmm.prune_running(st)
        try:
            status = boot(st, name, memsize, root_dev, directory, cfgname, console, got)
        except ToolExit as exc:
            status = exc.code
        vmm.record_loader_run(st, PROG, [PROG, *args], name, status, console=console, root=root_dev,
                              directory=directory, device_map=got.get("m", "/boot/grub/device.map"),
                              memsize=memsize, wired="S" in got)
        vmm.release_nmdm(st)
    return status


def boot(st: dict[str, Any], name: str, memsize: int, root_dev: str, directory: str, cfgname: str,
         console: Any, got: dict[str, Any]) -> int:
    """Console, device map, VM set-up, root device and config, then 'boot'."""
    if isinstance(console, str) and not vmm.open_chardev(st, console):
        fatal(f"cannot open `{console}': No such file or directory")
    drives = read_device_map(str(got.get("m", "/boot/grub/device.map")), "m" in got)

    def vm_fail(msg: str) -> None:
        print(msg, file=sys.stderr)
        print("Error in initializing VM", file=sys.stderr)
        raise ToolExit(1)

    if not kld.is_loaded(st, "vmm"):
        vm_fail(f"Could not create VM {name}")
    if st["sysctl"].get("hw.vmm.vmx.initialized") == "1" \
            and st["sysctl"].get("hw.vmm.vmx.cap.unrestricted_guest") != "1":
        vm_fail("VM unrestricted guest capability required")
    if not name or len(name.encode()) > vmm.VM_MAX_NAMELEN or "/" in name or name in (".", ".."):
        vm_fail(f"Could not create VM {name}")
    jailed = jails.vm_error(st, name)  # run through jexec: allow.vmm and the jail's devfs
    if jailed is not None:
        if jailed != "Operation not permitted" and vmm.read_vm(name) is None:
            vmm.create_vm(name, PROG)
        vm_fail(f"Could not create VM {name}")
    info = vmm.read_vm(name)
    if info is not None and name in vmm.live_running(st):
        vm_fail(f"Could not reinit VM {name}")
    info = vmm.create_vm(name, PROG) if info is None else vmm.reinit_vm(name, info)
    if memsize == 0 or memsize % 4096 or info.get("memsize") not in (None, memsize):
        vm_fail("Could not setup memory for VM")
    info.update({"memsize": memsize, "wired": "S" in got})
    vmm.write_vm(name, info)
    if not ROOT_RE.match(root_dev):
        fatal(f"disk `{root_dev}' not found")
    if root_dev == "host":
        cfg = os.path.join(paths.host_path(directory), cfgname)
        if not os.path.isfile(cfg):
            fatal(f"file `{os.path.join(directory, cfgname)}' not found")
    elif root_dev.split(",")[0] not in drives:
        fatal(f"disk `{root_dev}' not found")
    return vmm.take_loader_exit(name)


def grub_bhyve_main() -> int:
    """Entry point of ``bin/grub-bhyve``."""
    return run(main)
