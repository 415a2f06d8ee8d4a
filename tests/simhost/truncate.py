"""FreeBSD ``truncate(1)``.

hivectl creates sparse disk images with ``truncate -s SIZE FILE`` (its plan shows that command even when
the work is done in-process), so the stand-in follows FreeBSD's option set and size syntax, which is
not GNU's: sizes go through ``expand_number(3)`` (``20G``, ``512k``), a leading ``+``/``-`` is relative,
``%``/``/`` round up/down, and ``-c`` does not create missing files.
"""

from __future__ import annotations

import os
import sys

from . import paths
from .common import Getopt, GetoptError, die, expand_number, run, warn

PROG = "truncate"


def _usage() -> None:
    print("usage: truncate [-c] -s [+|-|%|/]size[K|k|M|m|G|g|T|t] file ...\n"
          "       truncate [-c] -r rfile file ...\n"
          "       truncate [-c] -d [-o offset[K|k|M|m|G|g|T|t]] -l length[K|k|M|m|G|g|T|t] file ...",
          file=sys.stderr)
    die(None, None, 1)


def main(args: list[str]) -> int:
    """``truncate [-c] -s [+|-|%|/]size file ...`` or ``truncate [-c] -r rfile file ...``."""
    no_create = False
    size_arg: str | None = None
    ref: str | None = None
    dealloc = False
    parser = Getopt(args, "cdr:s:o:l:")
    try:
        for opt, val in parser:
            if opt == "c":
                no_create = True
            elif opt == "s":
                size_arg = val
            elif opt == "r":
                ref = val
            elif opt == "d":
                dealloc = True
    except GetoptError as exc:
        warn(PROG, str(exc))
        _usage()
    files = parser.operands
    if not files or ((size_arg is None) == (ref is None) and not dealloc):
        _usage()
    mode = ""
    amount = 0
    if size_arg is not None:
        text = size_arg
        if text[:1] in ("+", "-", "%", "/"):
            mode, text = text[0], text[1:]
        number = expand_number(text)
        if number is None or number >= 1 << 63 or (mode in "%/" and mode and number == 0):
            die(PROG, f"invalid size argument `{size_arg}'", 1)
        amount = number or 0
    elif ref is not None:
        try:
            amount = os.stat(paths.host_path(ref)).st_size
        except OSError as exc:
            die(PROG, f"{ref}: {exc.strerror}", 1)
    status = 0
    for name in files:
        local = paths.host_path(name)
        flags = os.O_WRONLY | (0 if no_create else os.O_CREAT)
        try:
            fd = os.open(local, flags, 0o666)
        except FileNotFoundError:
            if no_create:
                continue
            warn(PROG, f"{name}: No such file or directory")
            status = 1
            continue
        except OSError as exc:
            warn(PROG, f"{name}: {exc.strerror}")
            status = 1
            continue
        try:
            if dealloc:
                continue
            current = os.fstat(fd).st_size
            if mode == "+":
                new = current + amount
            elif mode == "-":
                new = max(0, current - amount)
            elif mode == "%":
                new = -(-current // amount) * amount
            elif mode == "/":
                new = current // amount * amount
            else:
                new = amount
            os.ftruncate(fd, new)
        except OSError as exc:
            warn(PROG, f"{name}: {exc.strerror}")
            status = 1
        finally:
            os.close(fd)
    return status


def truncate_main() -> int:
    """Entry point of ``bin/truncate``."""
    return run(main)
