"""C-library rules shared by the stand-ins, reproduced exactly.

The point of the simulated host is to reject what FreeBSD rejects. Most of the surprising corners of the
real tools come from libc: BSD ``getopt`` stops at the first operand instead of permuting, ``strtol`` base 0
reads ``010`` as octal, ``sscanf("%d")`` ignores trailing junk, and libvmmapi treats a bare number below
1048576 as megabytes. These helpers copy those rules so every tool module gets them the same way.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

ULONG_MAX = (1 << 64) - 1
LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
MIB = 1 << 20
C_SPACE = " \t\n\v\f\r"

EX_USAGE = 64
EX_SOFTWARE = 70
EX_OSERR = 71


class ToolExit(Exception):
    """Raised to end a stand-in with an exit status (the tool's ``exit(3)``)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def warn(prog: str, msg: str) -> None:
    """``warnx(3)``: the program name, a colon, the message, on stderr."""
    print(f"{prog}: {msg}", file=sys.stderr)


def eprint(msg: str) -> None:
    """A message without the program prefix (bhyve's ``EPRINTLN``)."""
    print(msg, file=sys.stderr)


def die(prog: str | None, msg: str | None, code: int) -> NoReturn:
    """``errx(3)``: print (with the prefix unless ``prog`` is None) and exit with ``code``."""
    if msg is not None:
        if prog is None:
            eprint(msg)
        else:
            warn(prog, msg)
    raise ToolExit(code)


COMMANDS_FILE = "commands.jsonl"
EXECED_ENV = "SIMHOST_EXECED_BY"  # the pid a stand-in (jexec) exec'd another stand-in in


def record_command(argv: list[str]) -> None:
    """Append one invocation to ``$SIMHOST_ROOT/commands.jsonl`` (one JSON array per line).

    Every stand-in started as a process records itself before doing anything, so a test can compare what
    hivectl ran with what it planned (tests/bhyve/test_dry_run_equals_run.py). The program is recorded by
    its base name, as a plan names it (``bhyve``, not the stand-in's path). One ``write`` on an
    ``O_APPEND`` descriptor, so concurrent tools never interleave their lines.
    """
    root = os.environ.get("SIMHOST_ROOT")
    if not root:
        return
    if os.environ.pop(EXECED_ENV, "") == str(os.getpid()):
        return  # exec'd by jexec in the same process: the command was recorded as ``jexec JAIL ...``
    line = json.dumps([os.path.basename(argv[0]), *argv[1:]]) + "\n"
    fd = os.open(os.path.join(root, COMMANDS_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)


def run(main_fn: object, argv: list[str] | None = None) -> int:
    """Run a tool's ``main`` and turn :class:`ToolExit` into a status; flush like exit(3) would.

    Without ``argv`` this is a stand-in's process (its arguments are ``sys.argv``), which is recorded; a
    test calling a tool in-process (``SimHost.call``) passes ``argv`` and is not.
    """
    if argv is None:
        record_command(list(sys.argv))
    args = sys.argv[1:] if argv is None else argv
    try:
        status = main_fn(args)  # type: ignore[operator]
    except ToolExit as exc:
        status = exc.code
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return int(status or 0)


# ---------------------------------------------------------------------------------------------------------
# getopt(3), BSD flavour


class GetoptError(Exception):
    """A getopt diagnostic; the caller prints it with its own prefix, then its usage text."""


class Getopt:
    """POSIX/BSD ``getopt(3)``: grouped flags, attached or separate arguments, no reordering.

    Iterating yields ``(letter, argument)`` pairs one at a time, so a tool handles each option at its
    position (an error in an early option wins over a bad later one, as in C). After the loop,
    ``operands`` holds what follows the options.
    """

    def __init__(self, args: list[str], optstring: str) -> None:
        self.args = list(args)
        self.optstring = optstring
        self.operands: list[str] = []

    def _takes_arg(self, letter: str) -> bool | None:
        if letter == ":" or letter not in self.optstring:
            return None
        pos = self.optstring.index(letter)
        return pos + 1 < len(self.optstring) and self.optstring[pos + 1] == ":"

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        args = self.args
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if not arg.startswith("-") or arg == "-":
                break
            j = 1
            while j < len(arg):
                letter = arg[j]
                takes = self._takes_arg(letter)
                if takes is None:
                    raise GetoptError(f"illegal option -- {letter}")
                if not takes:
                    yield letter, None
                    j += 1
                    continue
                if j + 1 < len(arg):
                    value = arg[j + 1:]
                elif i + 1 < len(args):
                    i += 1
                    value = args[i]
                else:
                    raise GetoptError(f"option requires an argument -- {letter}")
                yield letter, value
                break
            i += 1
        self.operands = args[i:]


# ---------------------------------------------------------------------------------------------------------
# strtol / strtoul / sscanf


def _digit_value(ch: str) -> int:
    if ch.isdigit() and ch.isascii():
        return ord(ch) - 48
    low = ch.lower()
    if "a" <= low <= "z":
        return ord(low) - 87
    return 99


def c_strtonum(text: str, base: int = 0, unsigned: bool = False) -> tuple[int, int, bool]:
    """C ``strtol``/``strtoul``: returns (value, index where parsing stopped, overflowed).

    With no digits the value is 0 and the index is 0 (``endptr == nptr``). ``strtoul`` accepts a minus
    sign and negates modulo 2**64, exactly like C.
    """
    i = 0
    n = len(text)
    while i < n and text[i] in C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if base in (0, 16) and i + 1 < n and text[i] == "0" and text[i + 1] in "xX" \
            and i + 2 < n and _digit_value(text[i + 2]) < 16:
        i += 2
        base = 16
    elif base == 0:
        base = 8 if i < n and text[i] == "0" else 10
    start = i
    value = 0
    while i < n and _digit_value(text[i]) < base:
        value = value * base + _digit_value(text[i])
        i += 1
    if i == start:
        return 0, 0, False
    overflow = False
    if unsigned:
        if value > ULONG_MAX:
            return ULONG_MAX, i, True
        if negative:
            value = (-value) & ULONG_MAX
        return value, i, overflow
    if negative:
        value = -value
        if value < LONG_MIN:
            return LONG_MIN, i, True
    elif value > LONG_MAX:
        return LONG_MAX, i, True
    return value, i, overflow


def strtol_strict(text: str, base: int = 0) -> int | None:
    """``strtol`` that must consume the whole (non-empty) string without overflow, else None."""
    value, end, overflow = c_strtonum(text, base)
    if end == 0 or end != len(text) or overflow:
        return None
    return value


def scan_int(text: str, pos: int = 0) -> tuple[int, int] | None:
    """``sscanf("%d")`` at ``pos``: spaces, a sign, decimal digits. Returns (value, new position)."""
    i = pos
    n = len(text)
    while i < n and text[i] in C_SPACE:
        i += 1
    sign = 1
    if i < n and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    if i == start:
        return None
    value = sign * int(text[start:i])
    value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value, i


def scan_hex(text: str, pos: int = 0) -> tuple[int, int] | None:
    """``sscanf("%x")``: spaces, a sign, an optional ``0x``, hex digits (kept as unsigned int)."""
    i = pos
    n = len(text)
    while i < n and text[i] in C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if i + 1 < n and text[i] == "0" and text[i + 1] in "xX" and i + 2 < n and _digit_value(text[i + 2]) < 16:
        i += 2
    start = i
    while i < n and _digit_value(text[i]) < 16:
        i += 1
    if i == start:
        return None
    value = int(text[start:i], 16)
    if negative:
        value = -value
    return value & 0xFFFFFFFF, i


def scan_pattern(text: str, pattern: list[str]) -> list[int] | None:
    """A tiny ``sscanf``: ``pattern`` alternates literals and ``"%d"``; all conversions must match.

    Returns the converted numbers, or None when fewer than all of them matched (C callers compare the
    return value with the number of conversions).
    """
    pos = 0
    values: list[int] = []
    for piece in pattern:
        if piece == "%d":
            got = scan_int(text, pos)
            if got is None:
                return None
            values.append(got[0])
            pos = got[1]
        else:
            if not text.startswith(piece, pos):
                return None
            pos += len(piece)
    return values


# ---------------------------------------------------------------------------------------------------------
# sizes


def expand_number(text: str) -> int | None:
    """libutil ``expand_number(3)`` as in current FreeBSD (expand_number.c): ``2G``, ``2GB``, ``512b``; no junk."""
    i = 0
    n = len(text)
    while i < n and text[i] in C_SPACE:
        i += 1
    if i < n and text[i] == "+":
        i += 1
    elif i < n and text[i] == "-":
        return None
    if i >= n or not ("0" <= text[i] <= "9"):
        return None
    value, used, overflow = c_strtonum(text[i:], 0, unsigned=True)
    if overflow:
        return None
    i += used
    shift = 0
    if i < n and text[i].lower() in "kmgtpe":
        shift = 10 * ("kmgtpe".index(text[i].lower()) + 1)
        i += 1
    if i < n and text[i] in "bB":
        i += 1
    if i != n:
        return None
    value <<= shift
    if value > ULONG_MAX:
        return None
    return value


def parse_memsize(text: str) -> int | None:
    """libvmmapi ``vm_parse_memsize``: a bare number < 1048576 is MiB, a bigger one bytes (lib/libvmmapi/vmmapi.c)."""
    value, end, _overflow = c_strtonum(text, 0, unsigned=True)
    if text != "" and end == len(text) and end != 0:
        return value * MIB if value < MIB else value
    return expand_number(text)


# ---------------------------------------------------------------------------------------------------------
# processes


def proc_starttime(pid: int) -> int | None:
    """The kernel start time of ``pid`` (Linux ``/proc``), to tell a live process from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    tail = data[data.rfind(b")") + 2:].split()
    try:
        if tail[0] in (b"Z", b"X"):
            return None
        return int(tail[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    """True when ``pid`` runs and (if given) is still the process that recorded ``starttime``."""
    if pid <= 0:
        return False
    current = proc_starttime(pid)
    if current is None:
        if os.path.isdir("/proc/self"):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return starttime is None or current == starttime


def strerror(errno_value: int) -> str:
    """FreeBSD's wording for the few errno values the stand-ins report (Linux wording differs)."""
    table = {
        1: "Operation not permitted", 2: "No such file or directory", 5: "Input/output error",
        6: "Device not configured", 12: "Cannot allocate memory", 13: "Permission denied",
        16: "Device busy", 17: "File exists", 20: "Not a directory", 21: "Is a directory",
        22: "Invalid argument", 25: "Inappropriate ioctl for device", 28: "No space left on device",
        36: "Operation now in progress", 37: "Operation already in progress", 48: "Address already in use",
        63: "File name too long", 66: "Directory not empty",
    }
    return table.get(errno_value, f"Unknown error: {errno_value}")


ENOENT = 2
ENXIO = 6
ENOMEM = 12
EACCES = 13
EBUSY = 16
EEXIST = 17
EINVAL = 22
ENOTTY = 25
EALREADY = 37
EADDRINUSE = 48
ENAMETOOLONG = 63
