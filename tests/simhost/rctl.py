"""``rctl(8)``: the kernel's resource limits database, as strict as FreeBSD's (rctl(8), kern_rctl.c).

``rctl -a RULE...`` adds rules, ``rctl -r FILTER...`` removes the rules a filter matches, ``rctl -u FILTER``
prints a subject's resource usage, ``rctl -l FILTER`` the rules that apply to it, and ``rctl [FILTER...]``
lists rules (all of them without a filter). A rule is ``subject:subject-id:resource:action=amount[/per]``;
a filter is a rule with trailing parts left out. Amounts take expand_number(3) suffixes. Like the kernel:

- nothing works unless racct is on: ``kern.racct.enable`` 0 makes every command fail with the message
  rctl.c prints then ("RACCT/RCTL present, but disabled; enable using kern.racct.enable=1 tunable");
- a ``process`` subject must be a live process (ESRCH, "No such process", otherwise);
- ``throttle`` exists only for the decaying resources (pcpu and the four I/O rates) and ``deny`` not for
  the I/O rates (EOPNOTSUPP); an unknown subject, resource or action is EINVAL;
- the rules of a process vanish when it exits (racct(9) frees them with the process): every run first
  drops the rules whose process is gone, by pid and start time;
- a ``jail`` subject is a jail's name, which need not exist yet and whose rules outlive the jail
  (kern_rctl.c keeps them with the name's prison_racct): only ``rctl -r`` removes them; a name of
  MAXHOSTNAMELEN (256) characters or more is ENAMETOOLONG. ``rctl -u jail:NAME`` sums the usage of the
  processes jexec attached to that jail.

State: ``rctl`` in the host's JSON, a list of ``{"subject", "id", "resource", "action", "amount", "per",
"start"}``. Usage figures of a process come from its ``/proc`` entry (cputime, memoryuse, vmemoryuse; the
rest 0).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from . import state
from .common import Getopt, GetoptError, die, pid_alive, proc_starttime, run, warn

PROG = "rctl"
SUBJECTS = ("process", "user", "loginclass", "jail")
RESOURCES = ("cputime", "datasize", "stacksize", "coredumpsize", "memoryuse", "memorylocked", "maxproc",
             "openfiles", "vmemoryuse", "pseudoterminals", "swapuse", "nthr", "msgqqueued", "msgqsize", "nmsgq",
             "nsem", "nsemop", "nshm", "shmsize", "wallclock", "pcpu", "readbps", "writebps", "readiops",
             "writeiops")
DECAYING = ("pcpu", "readbps", "writebps", "readiops", "writeiops")
NOT_DENIABLE = ("readbps", "writebps", "readiops", "writeiops", "cputime", "wallclock")
ACTIONS = ("deny", "log", "devctl", "throttle")
SIGNALS = ("sighup", "sigint", "sigkill", "sigsegv", "sigxcpu", "sigxfsz", "sigterm", "sigstop", "sigusr1")
EINVAL = "Invalid argument"
ESRCH = "No such process"
EOPNOTSUPP = "Operation not supported"
ENAMETOOLONG = "File name too long"
MAXHOSTNAMELEN = 256
_NUMBER = re.compile(r"([0-9]+)([kmgtpeKMGTPE]?)")


class RuleError(Exception):
    """A rule the kernel refuses (the errno's text)."""


def _usage() -> None:
    print("usage: rctl [ -h ] [-a rule | -l filter | -r filter | -u filter | filter]", file=sys.stderr)
    die(None, None, 1)


def _expand(text: str) -> int:
    match = _NUMBER.fullmatch(text)
    if not match:
        raise ValueError(text)
    shift = 10 * ("kmgtpe".index(match.group(2).lower()) + 1) if match.group(2) else 0
    return int(match.group(1)) << shift


def parse(text: str, full: bool) -> dict[str, Any]:
    """A rule (``full``) or filter as the kernel's rctl_string_to_rule reads it; RuleError with the errno."""
    head, _, amount_text = text.partition("=")
    parts = head.split(":")
    if len(parts) > 4:
        raise RuleError(EINVAL)
    parts += [""] * (4 - len(parts))
    subject, ident, resource, action = parts
    rule: dict[str, Any] = {"subject": subject, "id": ident, "resource": resource, "action": action,
                            "amount": None, "per": None, "start": None}
    if subject and subject not in SUBJECTS:
        raise RuleError(EINVAL)
    if resource and resource not in RESOURCES:
        raise RuleError(EINVAL)
    if action and action not in ACTIONS + SIGNALS:
        raise RuleError(EINVAL)
    if subject == "jail" and len(ident) >= MAXHOSTNAMELEN:
        raise RuleError(ENAMETOOLONG)  # prison_racct_find: a jail subject's name is at most MAXHOSTNAMELEN-1
    if subject == "process" and ident:
        if not ident.isdigit():
            raise RuleError(EINVAL)
        start = proc_starttime(int(ident))
        if start is None:
            raise RuleError(ESRCH)
        rule["start"] = start
    if amount_text:
        value, _, per = amount_text.partition("/")
        try:
            rule["amount"] = _expand(value)
        except ValueError:
            raise RuleError(EINVAL) from None
        if per and per not in SUBJECTS:
            raise RuleError(EINVAL)
        rule["per"] = per or None
    if full:
        if not (subject and ident and resource and action) or rule["amount"] is None:
            raise RuleError(EINVAL)
        if action == "throttle" and resource not in DECAYING:
            raise RuleError(EOPNOTSUPP)
        if action == "deny" and resource in NOT_DENIABLE:
            raise RuleError(EOPNOTSUPP)
    return rule


def render(rule: dict[str, Any]) -> str:
    """rctl_rule_to_sbuf: the per-subject only when it differs from the subject."""
    text = f"{rule['subject']}:{rule['id']}:{rule['resource']}:{rule['action']}={rule['amount']}"
    if rule.get("per") and rule["per"] != rule["subject"]:
        text += f"/{rule['per']}"
    return text


def matches(rule: dict[str, Any], filt: dict[str, Any]) -> bool:
    return all(not filt[k] or rule[k] == filt[k] for k in ("subject", "id", "resource", "action")) and \
        (filt["amount"] is None or rule["amount"] == filt["amount"])


def live(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules left once those of exited processes are gone (what the kernel would still hold)."""
    kept = [r for r in data.get("rctl", [])
            if r["subject"] != "process" or pid_alive(int(r["id"]), r.get("start"))]
    data["rctl"] = kept
    return kept


def usage_of(pid: int) -> dict[str, int]:
    """A process's usage from /proc: cputime (seconds), memoryuse (RSS) and vmemoryuse (bytes)."""
    import os

    out = {name: 0 for name in RESOURCES}
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        out["cputime"] = (int(fields[11]) + int(fields[12])) // ticks
        out["vmemoryuse"] = int(fields[20])
        out["memoryuse"] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        out["nthr"] = int(fields[17])
    except (OSError, IndexError, ValueError):
        pass
    return out


def jail_usage(data: dict[str, Any], name: str) -> dict[str, int]:
    """A jail's usage: the sum over the live processes jexec attached to it (racct(9) charges a jail with
    its processes'); zeros for a name no jail has (the kernel's prison_racct for a name starts empty)."""
    total = {name: 0 for name in RESOURCES}
    for record in data.get("jails", {}).values():
        if record.get("name") != name:
            continue
        for pid, start in record.get("procs", []):
            if pid_alive(int(pid), start):
                for resource, value in usage_of(int(pid)).items():
                    total[resource] += value
    return total


def main(args: list[str]) -> int:
    try:
        getopt = Getopt(args, "ahlnru")
        flags = [letter for letter, _ in getopt]
    except GetoptError as error:
        warn(PROG, str(error))
        _usage()
        return 1
    modes = [f for f in flags if f in "alru"]
    if len(modes) > 1:
        die(PROG, "only one of -a, -l, -r, or -u may be specified", 1)
    mode = modes[0] if modes else ""
    operands = getopt.operands
    if mode and not operands:
        _usage()
    with state.transaction() as data:
        if data["sysctl"].get("kern.racct.enable") != "1":
            die(PROG, "RACCT/RCTL present, but disabled; enable using kern.racct.enable=1 tunable", 1)
        rules = live(data)
        status = 0
        if mode == "a":
            for text in operands:
                try:
                    rule = parse(text, full=True)
                except RuleError as error:
                    warn(PROG, f"failed to add rule '{text}': {error}")
                    status = 1
                    continue
                rules[:] = [r for r in rules if not (matches(r, {**rule, "amount": None}) and r["per"] == rule["per"])]
                rules.append(rule)
            return status
        if mode == "r":
            for text in operands:
                try:
                    filt = parse(text, full=False)
                except RuleError as error:
                    warn(PROG, f"failed to remove rules for '{text}': {error}")
                    status = 1
                    continue
                kept = [r for r in rules if not matches(r, filt)]
                if len(kept) == len(rules):
                    warn(PROG, f"failed to remove rules for '{text}': {ESRCH}")
                    status = 1
                rules[:] = kept
            return status
        if mode == "u":
            text = operands[0]
            try:
                filt = parse(text, full=False)
            except RuleError as error:
                die(PROG, f"failed to get resource usage for '{text}': {error}", 1)
            if not filt["id"] or filt["resource"]:
                die(PROG, f"failed to get resource usage for '{text}': {EINVAL}", 1)
            if filt["subject"] == "process":
                figures = usage_of(int(filt["id"]))
            elif filt["subject"] == "jail":
                figures = jail_usage(data, filt["id"])
            else:
                figures = {r: 0 for r in RESOURCES}
            for name in RESOURCES:
                print(f"{name}={figures.get(name, 0)}")
            return 0
        filters = operands or ["::"]
        for text in filters:
            try:
                filt = parse(text, full=False)
            except RuleError as error:
                warn(PROG, f"failed to get rules for '{text}': {error}")
                status = 1
                continue
            if mode == "l" and not (filt["subject"] and filt["id"]):
                warn(PROG, f"failed to get limits for '{text}': {EINVAL}")
                status = 1
                continue
            for rule in rules:
                if matches(rule, filt):
                    print(render(rule))
        return status


def rctl_main() -> int:
    return run(main)
