"""``pfctl(8)``: the subset a VM manager uses to keep NAT and port forwards in its own anchors.

hivectl never edits the administrator's ruleset; it loads ``hivectl/<switch>`` anchors with
``pfctl -a ANCHOR -f FILE``, flushes them with ``-F all``, shows them with ``-s nat|rules`` and asks
``-s info`` whether pf is enabled. The state keeps, per anchor, the translation and filter rules as
loaded, and whether pf is enabled. Without pf.ko every command fails as on FreeBSD
(``/dev/pf: No such file or directory``).

Rule files are checked line by line for the statements pf.conf(5) allows in an anchor, in the order pf
requires (translation before filtering), with addresses, ports and interface names checked; an error
is reported as ``FILE:LINE: syntax error`` and nothing is loaded.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from typing import Any

from . import kld, state
from .common import Getopt, GetoptError, die, run, warn

PROG = "pfctl"
_IFNAME = re.compile(r"!?\(?[A-Za-z][A-Za-z0-9_.-]{0,14}\)?")
_ANCHOR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


def _usage() -> None:
    print("usage: pfctl [-AdeghMmNnOPqRrvz] [-a anchor] [-D macro=value] [-F modifier]\n"
          "\t[-f file] [-i interface] [-K host | network]\n"
          "\t[-k host | network | gateway | label | id] [-o level] [-p device]\n"
          "\t[-s modifier] [-t table -T command [address ...]] [-x level]", file=sys.stderr)
    die(None, None, 1)


def _addr(word: str) -> bool:
    """``any``, an address or network (optionally negated), or an interface in parentheses."""
    word = word.lstrip("!")
    if word == "any" or (word.startswith("(") and word.endswith(")") and _IFNAME.fullmatch(word)):
        return True
    try:
        ipaddress.ip_network(word, strict=False)
    except ValueError:
        return False
    return True


def _port(word: str) -> bool:
    return word.isdigit() and 0 < int(word) < 65536


def _check(words: list[str]) -> str | None:
    """The kind of a rule line (``nat``, ``rdr`` or ``rules``) or None when pf would not parse it."""
    if not words:
        return None
    head = words[0]
    rest = words[1:]
    if head in ("rdr", "nat") and rest[:1] == ["pass"]:
        rest = rest[1:]
    if head in ("pass", "block"):
        rest = [w for w in rest if w not in ("in", "out", "quick", "log", "drop", "return")]
    if rest[:1] == ["on"]:
        if len(rest) < 2 or not _IFNAME.fullmatch(rest[1]):
            return None
        rest = rest[2:]
    if rest[:1] in (["inet"], ["inet6"]):
        rest = rest[1:]
    if rest[:1] == ["proto"]:
        if len(rest) < 2 or rest[1] not in ("tcp", "udp", "icmp", "icmp6"):
            return None
        rest = rest[2:]
    if rest[:1] == ["from"]:
        if len(rest) < 4 or not _addr(rest[1] if rest[1] != "!" else rest[2]):
            return None
        if rest[1] == "!":
            rest = rest[1:]
        rest = rest[2:]
        if rest[:1] != ["to"]:
            return None
        target = rest[1] if rest[1] != "!" else (rest[2] if len(rest) > 2 else "")
        if not _addr(target):
            return None
        rest = rest[3:] if rest[1] == "!" else rest[2:]
    elif rest[:1] == ["all"]:
        rest = rest[1:]
    if rest[:1] == ["port"]:
        if len(rest) < 2 or not _port(rest[1]):
            return None
        rest = rest[2:]
    if head in ("nat", "rdr"):
        if rest[:1] != ["->"] or len(rest) < 2 or not _addr(rest[1]):
            return None
        rest = rest[2:]
        if head == "rdr" and rest[:1] == ["port"]:
            if len(rest) < 2 or not _port(rest[1]):
                return None
            rest = rest[2:]
        return head if not rest else None
    if head in ("pass", "block") and rest in ([], ["keep", "state"], ["flags", "S/SA", "keep", "state"]):
        return "rules"
    return None


def _load(st: dict[str, Any], anchor: str, path: str) -> None:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        die(PROG, f"cannot open the main config file!: {exc.strerror}", 1)
    loaded: dict[str, list[str]] = {"nat": [], "rdr": [], "rules": []}
    order = {"nat": 0, "rdr": 0, "rules": 1}
    stage = 0
    errors = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind = _check(line.split())
        if kind is None:
            print(f"{path}:{number}: syntax error", file=sys.stderr)
            errors = True
            continue
        if order[kind] < stage:
            print(f"{path}:{number}: Rules must be in order: options, normalization, queueing, translation, "
                  "filtering", file=sys.stderr)
            errors = True
            continue
        stage = order[kind]
        loaded[kind].append(" ".join(line.split()))
    if errors:
        die(PROG, "Syntax error in config file: pf rules not loaded", 1)
    st.setdefault("pf", {"enabled": False, "anchors": {}})["anchors"][anchor] = loaded


def main(args: list[str]) -> int:
    anchor = ""
    actions: list[tuple[str, str | None]] = []
    parser = Getopt(args, "a:AdD:eqf:F:ghi:k:K:mMnNOo:Pp:rRs:t:T:vx:z")
    try:
        for opt, val in parser:
            if opt == "a":
                anchor = val or ""
            elif opt in ("e", "d", "f", "F", "s"):
                actions.append((opt, val))
    except GetoptError as exc:
        warn(PROG, str(exc))
        _usage()
    if parser.operands or not actions:
        _usage()
    if anchor and not _ANCHOR.fullmatch(anchor.rstrip("*").rstrip("/") or "x"):
        die(PROG, f"anchor name '{anchor}' invalid", 1)
    with state.transaction() as st:
        if not kld.is_loaded(st, "pf"):
            die(PROG, "/dev/pf: No such file or directory", 1)
        pf = st.setdefault("pf", {"enabled": False, "anchors": {}})
        for opt, val in actions:
            if opt == "e":
                if pf["enabled"]:
                    die(PROG, "pf already enabled", 1)
                pf["enabled"] = True
                print("pf enabled", file=sys.stderr)
            elif opt == "d":
                if not pf["enabled"]:
                    die(PROG, "pf not enabled", 1)
                pf["enabled"] = False
                print("pf disabled", file=sys.stderr)
            elif opt == "f":
                _load(st, anchor, val or "")
            elif opt == "F":
                if val not in ("all", "nat", "rules"):
                    die(PROG, f"Unknown flush modifier '{val}'", 1)
                rules = pf["anchors"].get(anchor)
                if rules is not None:
                    for kind in (("nat", "rdr", "rules") if val == "all" else
                                 ("nat", "rdr") if val == "nat" else ("rules",)):
                        rules[kind] = []
                    if not any(rules.values()):
                        del pf["anchors"][anchor]
                for word in (("rules", "nat") if val == "all" else (val,)):
                    print(f"{word} cleared", file=sys.stderr)
            elif opt == "s":
                if val == "info":
                    print(f"Status: {'Enabled' if pf['enabled'] else 'Disabled'} for 0 days 00:00:00"
                          "           Debug: Urgent")
                elif val in ("nat", "rules"):
                    rules = pf["anchors"].get(anchor, {})
                    if val == "nat":
                        lines = rules.get("nat", []) + rules.get("rdr", [])
                    else:
                        lines = rules.get("rules", [])
                    for line in lines:
                        print(line)
                elif val in ("Anchors", "A"):
                    for name in sorted(pf["anchors"]):
                        print(f"  {name}")
                else:
                    die(PROG, f"Unknown show modifier '{val}'", 1)
    return 0


def pfctl_main() -> int:
    """Entry point of ``bin/pfctl``."""
    return run(main)
