"""``cu(1)`` (FreeBSD's, from tip): what ``hivectl console`` runs for an nmdm console.

The option grammar follows FreeBSD's ``cumain``: BSD getopt ``a:l:s:htoe0123456789``; a ``-l`` line without
a ``/`` gets ``/dev/`` in front; a second ``-l`` is refused (``cannot specificy multiple -l options`` —
the real spelling — exit 3); ``-s`` must be a speed the tty layer knows (``unsupported speed``, exit 3);
a digit option replaces the last character of the line (the historical ``-#``); more than one operand is a
usage error (exit 8). A line that cannot be opened makes the real cu say ``all ports busy`` on stdout
and exit 3; here that is a node missing under ``$SIMHOST_ROOT`` (an nmdm pair exists only while someone
holds it, so attaching to a stopped guest fails), or the ``A`` side of a pair while bhyve holds it.

A "session" holds the pair like the real cu, is recorded in the state (``cu_runs``: argv, line, speed,
pid, then what was typed), reads standard input until end-of-file and exits 0, as ``~.`` would.
"""

from __future__ import annotations

import os
import sys
import time

from . import paths, state, vmm
from .common import Getopt, GetoptError, ToolExit, die, run

PROG = "cu"
USAGE = "usage: cu [-ehot] [-a acu] [-l line] [-s speed] [-#] [phone-number]"
SPEEDS = {50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 7200, 9600, 14400, 19200, 28800, 38400,
          57600, 76800, 115200, 230400, 460800, 921600}
DEFAULT_SPEED = 9600


def usage() -> None:
    die(None, USAGE, 8)


def parse(args: list[str]) -> tuple[str | None, int]:
    line: str | None = None
    speed = DEFAULT_SPEED
    parser = Getopt(args, "a:l:s:htoe0123456789")
    try:
        for opt, val in parser:
            if opt == "l":
                if line is not None:
                    die(PROG, "cannot specificy multiple -l options", 3)
                value = val or ""
                line = value if "/" in value else f"/dev/{value}"
            elif opt == "s":
                text = val or ""
                if not text.isdigit() or int(text) not in SPEEDS:
                    die(PROG, f"unsupported speed {text}", 3)
                speed = int(text)
            elif opt.isdigit() and line:
                line = line[:-1] + opt
    except GetoptError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        usage()
    if len(parser.operands) > 1:
        usage()
    if line is None:  # dialling out through /etc/remote is not simulated
        print("all ports busy")
        raise ToolExit(3)
    return line, speed


def main(args: list[str]) -> int:
    """``cu -l LINE [-s SPEED]``: attach, record, read standard input to its end, detach."""
    line, speed = parse(args)
    assert line is not None
    pair = vmm.nmdm_pair(line)
    with state.transaction() as st:
        vmm.prune_running(st)
        holders = [h for h in st.get("nmdm", {}).get(pair or "", []) if h != vmm.me()]
        busy = pair is not None and line.endswith("A") and bool(holders)
        if busy or not os.path.exists(paths.host_path(line)):
            print("all ports busy")
            return 3
        if pair is not None:
            vmm.open_nmdm(st, pair)
        runs = st.setdefault("cu_runs", [])
        index = len(runs)
        runs.append({"argv": [PROG, *args], "line": line, "speed": speed, "pid": os.getpid(),
                     "time": time.time(), "input": None})
    print("Connected")
    sys.stdout.flush()
    typed = sys.stdin.buffer.read().decode(errors="replace")
    with state.transaction() as st:
        st["cu_runs"][index]["input"] = typed
        vmm.release_nmdm(st)
    print("\nDisconnected")
    return 0


def cu_main() -> int:
    """Entry point of ``bin/cu``."""
    return run(main)
