"""``pciconf -l[v]`` (pciconf(8)): the host's PCI devices from the state.

hivectl lists devices to offer and check passthrough (``pptN`` entries); the device list is part of the
state so a test can add or re-bind devices. Lines use FreeBSD's format, ``-v`` adds the name lines.
"""

from __future__ import annotations

import sys
from typing import Any

from . import state
from .common import Getopt, GetoptError, run, warn

PROG = "pciconf"


def selector_matches(dev: dict[str, Any], sel: str) -> bool:
    """``pciconf -l pci0:2:0:0`` or ``-l ppt0`` style selectors."""
    name = f"{dev['driver']}{dev['unit']}"
    if sel == name:
        return True
    text = sel[3:] if sel.startswith("pci") else sel
    numbers = text.split(":")
    try:
        values = [int(n) for n in numbers]
    except ValueError:
        return False
    full = [dev["domain"], dev["bus"], dev["slot"], dev["func"]]
    if len(values) == 4:
        return values == full
    if len(values) == 3:
        return values == full[1:]
    if len(values) == 2:
        return values == [dev["bus"], dev["slot"]] and dev["func"] == 0
    return False


def line(dev: dict[str, Any]) -> str:
    """``ppt0@pci0:2:0:0:<TAB>class=0x020000 rev=0x01 hdr=0x00 vendor=0x8086 ...``."""
    return (f"{dev['driver']}{dev['unit']}@pci{dev['domain']}:{dev['bus']}:{dev['slot']}:{dev['func']}:\t"
            f"class=0x{dev['class']:06x} rev=0x{dev['rev']:02x} hdr=0x{dev['hdr']:02x} "
            f"vendor=0x{dev['vendor']:04x} device=0x{dev['device']:04x} "
            f"subvendor=0x{dev['subvendor']:04x} subdevice=0x{dev['subdevice']:04x}")


def main(args: list[str]) -> int:
    """``pciconf -l [-v] [selector]``; other modes (-r/-w/-a) are not simulated."""
    opts: set[str] = set()
    parser = Getopt(args, "aBbceilrvVw")
    try:
        for opt, _val in parser:
            opts.add(opt)
    except GetoptError as exc:
        warn(PROG, str(exc))
        opts.add("?")
    if "l" not in opts or "?" in opts or opts & {"a", "r", "w"} or len(parser.operands) > 1:
        print("usage: pciconf -l [-BbcevV] [device]\n"
              "       pciconf -a device\n"
              "       pciconf -r [-b | -h] device addr[:addr2]\n"
              "       pciconf -w [-b | -h] device addr value", file=sys.stderr)
        return 1
    devices = state.load().get("pci", [])
    if parser.operands:
        devices = [d for d in devices if selector_matches(d, parser.operands[0])]
        if not devices:
            warn(PROG, f"{parser.operands[0]}: No such device")
            return 1
    for dev in devices:
        print(line(dev))
        if "v" in opts:
            print(f"    vendor     = '{dev.get('vendor_name', '')}'")
            print(f"    device     = '{dev.get('device_name', '')}'")
            print(f"    class      = {dev.get('class_name', '')}")
            if dev.get("subclass"):
                print(f"    subclass   = {dev['subclass']}")
    return 0


def pciconf_main() -> int:
    """Entry point of ``bin/pciconf``."""
    return run(main)
