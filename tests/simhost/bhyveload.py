"""``bhyveload(8)`` (usr.sbin/bhyveload/bhyveload.c): the FreeBSD loader that prepares a VM for bhyve.

BSD getopt ``CSc:d:e:h:l:m:`` and exactly one VM name. As in the real program, ``-c``, ``-d``, ``-l`` and
``-m`` are checked while the options are read (``Could not open '<x>'``/``Invalid memsize``, exit 64).
Then the VM is created or re-initialised (a running bhyve makes that fail), its memory set up (a VM that
already has memory of another size refuses), and the loader "boots": ``/dev/vmm/NAME`` exists with the
memory size recorded, and the exit status is 0 unless a test asked for another one with
``control/NAME.loader_exit`` (1 = ``quit`` at the loader prompt, 2 = ``reboot``). Every run is recorded
in the state (``loader_runs``) with its argv, disks, environment and console.

Release differences (state ``release``): 15 opens ``-l`` while parsing (exit 71) and words VM errors as
``bhyveload: vm_openf: NAME: ...``; 14.x prints ``vm_create:``/``vm_reinit:`` and reports a missing loader
with the dynamic linker's message on stdout.
"""

from __future__ import annotations

import os
import sys

from . import jails, kld, paths, state, vmm
from .common import EX_OSERR, EX_USAGE, Getopt, GetoptError, ToolExit, die, parse_memsize, run, warn

PROG = "bhyveload"
PAGE = 4096
DEFAULT_LOADER = "/boot/userboot.so"
USAGE = ("usage: bhyveload [-S][-c <console-device>] [-d <disk-path>] [-e <name=value>]\n"
         "                 [-h <host-path>] [-l <loader>] [-m memsize[K|k|M|m|G|g|T|t]] <vmname>")


def usage() -> None:
    print(USAGE, file=sys.stderr)
    raise ToolExit(1)


def main(args: list[str]) -> int:
    """``bhyveload [-CS] [-c cons] [-d disk]... [-e n=v]... [-h dir] [-l loader] [-m mem] vmname``."""
    snapshot = state.load()
    release = str(snapshot.get("release", "14"))
    console: str | None = None
    disks: list[str] = []
    env: list[str] = []
    host: str | None = None
    loader: str | None = None
    memsize = 256 << 20
    wired = False
    parser = Getopt(args, "CSc:d:e:h:l:m:")
    try:
        for opt, val in parser:
            assert val is not None or opt in "CS"
            if opt == "S":
                wired = True
            elif opt == "C":
                pass
            elif opt == "c":
                if not vmm.open_chardev(snapshot, val or "", hold=False):
                    die(PROG, f"Could not open '{val}'", EX_USAGE)
                console = val
            elif opt == "d":
                local = paths.host_path(val or "")
                readable = os.path.exists(local) and not os.path.isdir(local) and os.access(local, os.R_OK)
                if not val or not readable:
                    die(PROG, f"Could not open '{val}'", EX_USAGE)
                disks.append(val or "")
            elif opt == "e":
                env.append(val or "")
            elif opt == "h":
                host = val
            elif opt == "l":
                if loader is not None:
                    die(PROG, "-l can only be given once", EX_USAGE)
                loader = val
                if release != "14" and not os.path.isfile(paths.host_path(val or "")):
                    die(PROG, f"{val}: No such file or directory", EX_OSERR)
            elif opt == "m":
                size = parse_memsize(val or "")
                if size is None:
                    die(PROG, f"Invalid memsize '{val}'", EX_USAGE)
                memsize = size or 0
    except GetoptError as exc:
        warn(PROG, str(exc))
        usage()
    if len(parser.operands) != 1:
        usage()
    name = parser.operands[0]
    with state.transaction() as st:
        vmm.prune_running(st)
        if console is not None:
            vmm.open_chardev(st, console)
        try:
            status = load(st, release, name, memsize, wired, loader, console, disks, host)
        except ToolExit as exc:
            status = exc.code
        vmm.record_loader_run(st, "bhyveload", ["bhyveload", *args], name, status, console=console,
                              disks=disks, env=env, host=host, loader=loader or DEFAULT_LOADER,
                              memsize=memsize, wired=wired)
        vmm.release_nmdm(st)
    return status


def load(st: dict[str, object], release: str, name: str, memsize: int, wired: bool, loader: str | None,
         console: str | None, disks: list[str], host: str | None) -> int:
    """Create/reinit the VM, set up memory, run the loader."""
    def vm_error(call: str, text: str) -> None:
        if release == "14":
            die(None, f"{call}: {text}", 1)
        die(PROG, f"vm_openf: {name}: {text}", 1)

    if not kld.is_loaded(st, "vmm"):
        vm_error("vm_create", "No such file or directory")
    if not name or len(name.encode()) > vmm.VM_MAX_NAMELEN or "/" in name or name in (".", ".."):
        vm_error("vm_create", "Invalid argument")
    jailed = jails.vm_error(st, name)  # run through jexec: allow.vmm and the jail's devfs
    if jailed == "Operation not permitted":
        vm_error("vm_create", jailed)
    info = vmm.read_vm(name)
    if jailed is not None:
        if info is None:
            vmm.create_vm(name, "bhyveload")
        vm_error("vm_open", jailed)
    if info is not None and name in vmm.live_running(st):
        vm_error("vm_reinit", "Device busy")
    info = vmm.create_vm(name, "bhyveload") if info is None else vmm.reinit_vm(name, info)
    if memsize == 0 or memsize % PAGE or info.get("memsize") not in (None, memsize):
        die(None, "vm_setup_memory: Invalid argument", 1)
    info.update({"memsize": memsize, "wired": wired})
    vmm.write_vm(name, info)
    path = loader or DEFAULT_LOADER
    if not os.path.isfile(paths.host_path(path)):
        print(f'Cannot open "{path}"')
        return 1
    if not disks and host is None:
        print("simhost: bhyveload was given no disk (-d) and no host directory (-h): the loader would stop "
              "at its prompt", file=sys.stderr)
        return 1
    return vmm.take_loader_exit(name)


def bhyveload_main() -> int:
    """Entry point of ``bin/bhyveload``."""
    return run(main)
