"""``netstat(1)``'s interface display (usr.bin/netstat/if.c, ``intpr``): ``netstat -i [-bdhnW] [-f family]``
and ``netstat -I interface [-bdhnW]``.

Only the interface mode is simulated; any other mode (sockets, routes, ``-s`` statistics) is refused with a
``simhost:`` line and exit 64, so hivectl cannot come to depend on an output this stand-in never checked.
Columns as FreeBSD prints them: ``Name Mtu Network Address Ipkts Ierrs Idrop`` then ``Ibytes`` with ``-b``,
``Opkts Oerrs``, ``Obytes`` with ``-b``, ``Coll``, and ``Drop`` (output drops) with ``-d``. ``-f link``
(the only family simulated) shows the link-level line of each interface: network ``<Link#INDEX>``, the MAC
as address (empty for an interface without one; ``lo0`` shows its name). A down interface's name ends in
``*``.

Counters: each interface keeps its own in the state (``counters``, zero when created). A tap opened by a
running bhyve stand-in also carries that guest's traffic, a steady flow from the moment bhyve started
(``GUEST_FLOW``): the tap's input is what the guest sends, its output what the guest receives. The flow
stops when the bhyve stand-in exits, as a real tap stops counting when nothing writes to it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from . import state, vmm
from .common import Getopt, GetoptError, run

PROG = "netstat"
OPTSTRING = "46AaBbCdF:f:ghI:iLlM:mN:nOoPp:Qq:RrSTsuWw:xz"
SIMULATED = set("bdhinWfI")
COLUMNS = ("ipkts", "ierrs", "idrop", "ibytes", "opkts", "oerrs", "obytes", "coll", "odrop")
# A running guest's traffic per second, seen from its tap: (packets, bytes) sent and received by the guest.
GUEST_FLOW = {"ipkts": 12, "ibytes": 12 * 700, "opkts": 9, "obytes": 9 * 540, "idrop": 0, "odrop": 0}


def usage() -> int:
    print("usage: netstat -i | -I interface [-46abdhnW] [-f address_family]", file=sys.stderr)
    return 1


def counters(iface: dict[str, Any], running: dict[str, dict[str, Any]], now: float) -> dict[str, int]:
    values = {key: int(iface.get("counters", {}).get(key, 0)) for key in COLUMNS}
    for rec in running.values():
        if iface["name"] in rec.get("taps", []):
            seconds = max(0.0, now - float(rec["started"]))
            for key, rate in GUEST_FLOW.items():
                values[key] += int(rate * seconds)
    return values


def row(iface: dict[str, Any], values: dict[str, int], bytes_too: bool, drops: bool) -> list[str]:
    name = iface["name"] + ("" if "UP" in iface["flags"] else "*")
    address = iface.get("ether") or (iface["name"] if iface["kind"] == "lo" else "")
    words = [name, str(iface["mtu"]), f"<Link#{iface['index']}>", address,
             str(values["ipkts"]), str(values["ierrs"]), str(values["idrop"])]
    if bytes_too:
        words.append(str(values["ibytes"]))
    words += [str(values["opkts"]), str(values["oerrs"])]
    if bytes_too:
        words.append(str(values["obytes"]))
    words.append(str(values["coll"]))
    if drops:
        words.append(str(values["odrop"]))
    return words


def main(args: list[str]) -> int:
    opts: dict[str, str | None] = {}
    try:
        for letter, value in Getopt(args, OPTSTRING):
            if letter not in SIMULATED:
                print(f"simhost: netstat -{letter} is not simulated", file=sys.stderr)
                return 64
            opts[letter] = value
    except GetoptError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return usage()
    if "i" not in opts and "I" not in opts:
        print("simhost: only netstat's interface display (-i, -I) is simulated", file=sys.stderr)
        return 64
    family = opts.get("f")
    if family is not None and family != "link":
        if family in ("inet", "inet6", "unix", "netgraph", "ng", "link"):
            print(f"simhost: netstat -f {family} is not simulated", file=sys.stderr)
            return 64
        print(f"{PROG}: {family}: unknown address family", file=sys.stderr)
        return 1
    st = state.load()
    running = vmm.live_running(st)
    now = time.time()
    names = sorted(st["interfaces"], key=lambda n: st["interfaces"][n]["index"])
    if "I" in opts:
        wanted = opts["I"] or ""
        if wanted not in st["interfaces"]:
            print(f"{PROG}: {wanted}: no such interface", file=sys.stderr)  # if.c: xo_errx on a missing name
            return 1
        names = [wanted]
    bytes_too, drops = "b" in opts, "d" in opts
    header = ["Name", "Mtu", "Network", "Address", "Ipkts", "Ierrs", "Idrop"]
    header += ["Ibytes"] if bytes_too else []
    header += ["Opkts", "Oerrs"] + (["Obytes"] if bytes_too else []) + ["Coll"] + (["Drop"] if drops else [])
    rows = [header] + [row(st["interfaces"][n], counters(st["interfaces"][n], running, now), bytes_too, drops)
                       for n in names]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]), r[3].ljust(widths[3])]
        cells += [cell.rjust(width) for cell, width in zip(r[4:], widths[4:], strict=True)]
        print(" ".join(cells))
    return 0


def netstat_main() -> int:
    """Entry point of ``bin/netstat``."""
    return run(main)
