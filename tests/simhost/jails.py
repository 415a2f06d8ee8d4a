"""jail(8), jls(8), jexec(8) and devfs(8) for the simulated host, and what a jailed process may see.

The kernel side kept in the state:

- ``jails``: by jid, each jail's name, path, parameters (only those jail(8) knows; ``allow.vmm`` from
  FreeBSD 14 on), its mounts (the ``mount`` fstab lines and the ``mount.devfs`` devfs with its ruleset) and
  the processes attached to it (pid and start time, by ``jexec``);
- ``devfs_rulesets``: the rulesets defined with ``devfs rule -s N add ...`` (devfs.rules(5)).

A stand-in that opens a device (bhyve, bhyveload, grub-bhyve) asks :func:`device_error`: a process attached
to a jail sees a ``/dev`` node only if the jail's devfs ruleset leaves it (and every directory above it)
unhidden, as devfs(5) applies rules to each node of a mount, and it may create a VM only with
``allow.vmm`` (jail(8): "allow.vmm: Allow access to vmm(4)"). Everything else is the real tools' behaviour:
unknown parameters, missing jails, bad ruleset numbers and a ``path`` that does not exist are refused with
the tools' messages, and ``jail -r`` stops the jail's processes (SIGTERM, then SIGKILL) and unmounts its
file systems.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from typing import Any

from . import paths, state
from .common import EXECED_ENV, die, pid_alive, proc_starttime, run, strtol_strict

BOOL_PARAMS = {"persist", "allow.raw_sockets", "allow.mount", "allow.mount.devfs", "allow.mount.nullfs",
               "allow.sysvipc", "allow.chflags", "allow.set_hostname", "mount.devfs", "mount.nodevfs", "vnet",
               "allow.vmm"}
VALUE_PARAMS = {"name", "path", "host.hostname", "ip4", "ip6", "ip4.addr", "ip6.addr", "devfs_ruleset",
                "enforce_statfs", "children.max", "securelevel", "mount", "stop.timeout", "jid"}
IP_MODES = ("inherit", "new", "disable")
STOP_TIMEOUT = 2.0  # jail(8) waits stop.timeout (default 10 s) before SIGKILL; shortened for tests
MAX_RULESET = 65535
# Directories every FreeBSD host has, which a Linux test machine may lack (/libexec): mountable as sources.
FREEBSD_BASE = ("/bin", "/lib", "/libexec", "/sbin", "/usr", "/boot")


def _jail_params(release: str) -> tuple[set[str], set[str]]:
    """The parameters jail(8) knows on the simulated releases (14 and 15 both have ``allow.vmm``)."""
    return set(BOOL_PARAMS), VALUE_PARAMS


def find(st: dict[str, Any], key: str) -> tuple[str, dict[str, Any]] | None:
    """The jail named ``key``, or with jid ``key`` (jail(8), jexec(8), jls(8) accept either)."""
    jails: dict[str, dict[str, Any]] = st.get("jails", {})
    if key in jails:
        return key, jails[key]
    for jid, record in jails.items():
        if record["name"] == key:
            return jid, record
    return None


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def jail_of(st: dict[str, Any], pid: int | None = None) -> dict[str, Any] | None:
    """The jail a process belongs to: attached by jexec, or a descendant of such a process."""
    current = os.getpid() if pid is None else pid
    for _ in range(64):
        if current <= 1:
            return None
        for record in st.get("jails", {}).values():
            for proc_pid, start in record.get("procs", []):
                if proc_pid == current and pid_alive(proc_pid, start):
                    return dict(record)
        current = _parent(current)
    return None


# ---------------------------------------------------------------------------------------------------------
# devfs(5) rules


def _pattern(text: str) -> re.Pattern[str]:
    """fnmatch(3) with FNM_PATHNAME, as devfs matches rule paths: ``*`` and ``?`` never match ``/``."""
    out = ""
    for ch in text:
        out += "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch)
    return re.compile(out + r"\Z")


def _hidden(st: dict[str, Any], ruleset: int, node: str, depth: int = 0) -> bool | None:
    """What ruleset ``ruleset`` decides for ``node`` (True hidden, False unhidden, None no rule matched)."""
    verdict: bool | None = None
    if depth > 16:
        return None
    for rule in sorted(st.get("devfs_rulesets", {}).get(str(ruleset), []), key=lambda r: int(r["number"])):
        if rule["action"] == "include":
            found = _hidden(st, int(rule["arg"]), node, depth + 1)
            verdict = found if found is not None else verdict
        elif rule["action"] in ("hide", "unhide") and (rule.get("path") is None
                                                      or _pattern(rule["path"]).match(node)):
            verdict = rule["action"] == "hide"
    return verdict


def node_visible(st: dict[str, Any], ruleset: int, node: str) -> bool:
    """Whether a devfs mount with ``ruleset`` shows ``node`` (a path below /dev): it and its directories."""
    if ruleset == 0:
        return True
    parts = node.strip("/").split("/")
    return not any(_hidden(st, ruleset, "/".join(parts[:i])) for i in range(1, len(parts) + 1))


def device_error(st: dict[str, Any], device: str) -> str | None:
    """``No such file or directory`` when this process is jailed and its jail's /dev hides ``device``."""
    jail = jail_of(st)
    if jail is None or not device.startswith("/dev/"):
        return None
    devfs = jail.get("devfs")
    if devfs is None:
        return "No such file or directory"  # no devfs mounted in the jail: its /dev is empty
    return None if node_visible(st, int(devfs["ruleset"]), device[len("/dev/"):]) else "No such file or directory"


def vm_error(st: dict[str, Any], name: str) -> str | None:
    """Why a jailed process cannot create or open VM ``name``: no ``allow.vmm``, or a hidden /dev/vmm/NAME."""
    jail = jail_of(st)
    if jail is None:
        return None
    if jail["params"].get("allow.vmm") != "true":
        return "Operation not permitted"
    return device_error(st, f"/dev/vmm/{name}")


# ---------------------------------------------------------------------------------------------------------
# jail(8)


def _bool_param(word: str, bools: set[str]) -> tuple[str, str] | None:
    name, eq, value = word.partition("=")
    base = name
    negated = False
    if name not in bools:
        head, dot, tail = name.rpartition(".")
        candidate = f"{head}{dot}{tail[2:]}" if tail.startswith("no") else ""
        if candidate in bools:
            base, negated = candidate, True
        else:
            return None
    if eq:
        truth = {"1": True, "true": True, "0": False, "false": False}.get(value)
        if truth is None or negated:
            die("jail", f"{base}: invalid boolean value \"{value}\"", 1)
        return base, "true" if truth else "false"
    return base, "false" if negated else "true"


def _resolve(mounts: list[dict[str, str]], target: str) -> str:
    """Where a path below a jail's root is on the host, through the jail's nullfs mounts (last wins)."""
    for mount in reversed(mounts):
        where = mount["target"].rstrip("/")
        if mount["type"] == "nullfs" and (target == where or target.startswith(where + "/")):
            return mount["source"].rstrip("/") + target[len(where):] or "/"
    return target


def create(args: list[str]) -> int:
    """``jail -c param=value ...``: a new jail with the given parameters (jail(8))."""
    with state.transaction() as st:
        release = str(st.get("release", "14"))
        bools, values = _jail_params(release)
        params: dict[str, str] = {}
        fstab: list[str] = []
        for word in args:
            found = _bool_param(word, bools)
            if found is not None:
                params[found[0]] = found[1]
                continue
            name, eq, value = word.partition("=")
            if name not in values:
                die("jail", f"unknown parameter: {name}", 1)
            if not eq:
                die("jail", f"{name}: missing value", 1)
            if name == "mount":
                fstab.append(value)
            else:
                params[name] = value
        name = params.get("name", "")
        if not name:
            die("jail", "missing jail name", 1)
        if name.isdigit():
            die("jail", f"\"{name}\": jail name may not be a number", 1)
        if find(st, name) is not None:
            die("jail", f"\"{name}\": jail already exists", 1)
        for mode in ("ip4", "ip6"):
            if mode in params and params[mode] not in IP_MODES:
                die("jail", f"{mode}: invalid value \"{params[mode]}\"", 1)
        ruleset = params.get("devfs_ruleset", "0")
        number = strtol_strict(ruleset, 10)
        if number is None or not 0 <= number <= MAX_RULESET:
            die("jail", f"devfs_ruleset: invalid integer value \"{ruleset}\"", 1)
        path = params.get("path", "")
        if not path or not os.path.isdir(paths.host_path(path)):
            die("jail", f"{name}: path {path or '(none)'}: No such file or directory", 1)
        mounts: list[dict[str, str]] = []
        for line in fstab:
            fields = line.split()
            if len(fields) < 4 or fields[2] != "nullfs" or fields[3] not in ("ro", "rw"):
                die("jail", f"{name}: mount: unsupported fstab line \"{line}\"", 1)
            source, target = fields[0], fields[1]
            if source not in FREEBSD_BASE and not os.path.isdir(paths.host_path(source)):
                die("jail", f"{name}: mount: {source}: No such file or directory", 1)
            if not os.path.isdir(paths.host_path(_resolve(mounts, target))):
                die("jail", f"{name}: mount: {target}: No such file or directory", 1)
            mounts.append({"type": "nullfs", "source": source, "target": target, "mode": fields[3]})
        devfs = None
        if params.get("mount.devfs") == "true":
            devdir = path.rstrip("/") + "/dev"
            if not os.path.isdir(paths.host_path(_resolve(mounts, devdir))):
                die("jail", f"{name}: mount.devfs: {devdir}: No such file or directory", 1)
            # jail(8): mount.devfs applies devfs_ruleset, or ruleset 4 (devfsrules_jail) when none is set.
            devfs = {"mount": devdir, "ruleset": number or 4}
        jid = str(st.get("next_jid", 1))
        st["next_jid"] = int(jid) + 1
        st.setdefault("jails", {})[jid] = {"jid": int(jid), "name": name, "path": path, "params": params,
                                          "mounts": mounts, "devfs": devfs, "procs": [], "created": time.time()}
    print(f"{name}: created")
    return 0


def remove(key: str) -> int:
    """``jail -r NAME``: stop the jail's processes (SIGTERM, then SIGKILL after stop.timeout), unmount."""
    with state.transaction() as st:
        found = find(st, key)
        if found is None:
            die("jail", f"\"{key}\" not found", 1)
        _jid, record = found
        procs = [(int(p), s) for p, s in record.get("procs", []) if pid_alive(int(p), s)]
    for pid, _start in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and any(pid_alive(p, s) for p, s in procs):
        time.sleep(0.05)
    for pid, start in procs:
        if pid_alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with state.transaction() as st:
        found = find(st, key)
        if found is not None:
            del st["jails"][found[0]]
    print(f"{record['name']}: removed")
    return 0


def jail_main_args(args: list[str]) -> int:
    """``jail -c param ...`` or ``jail -r jail``; other forms (jail.conf) are not simulated."""
    if not args:
        die(None, "usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username] -[cmr] param=value ... "
                  "[command=command ...]", 64)
    if args[0] == "-c":
        return create(args[1:])
    if args[0] == "-r" and len(args) == 2:
        return remove(args[1])
    die("jail", f"simhost: unsupported arguments {' '.join(args)!r}", 64)


def jail_main() -> int:
    return run(jail_main_args)


# ---------------------------------------------------------------------------------------------------------
# jls(8)


def _param_value(record: dict[str, Any], name: str) -> str | None:
    if name == "jid":
        return str(record["jid"])
    if name in ("name", "path"):
        return str(record[name])
    if name == "devfs_ruleset":
        devfs = record.get("devfs")
        return str(devfs["ruleset"]) if devfs else record["params"].get("devfs_ruleset", "0")
    if name in record["params"]:
        return str(record["params"][name])
    if name in BOOL_PARAMS:
        return "false"
    if name in VALUE_PARAMS:
        return ""
    return None


def jls_args(args: list[str]) -> int:
    """``jls [-j jail] [param ...]``: one line per jail, the parameters' values separated by spaces."""
    wanted: str | None = None
    if args[:1] == ["-j"]:
        if len(args) < 2:
            die("jls", "option requires an argument -- j", 64)
        wanted, args = args[1], args[2:]
    st = state.load()
    bools, values = _jail_params(str(st.get("release", "14")))
    for name in args:
        if name not in bools and name not in values:
            die("jls", f"unknown parameter: {name}", 1)
    if wanted is not None:
        found = find(st, wanted)
        if found is None:
            die("jls", f"jail \"{wanted}\" not found", 1)
        records = [found[1]]
    else:
        records = sorted(st.get("jails", {}).values(), key=lambda r: int(r["jid"]))
    if not args:
        print("   JID  IP Address      Hostname                      Path")
        for record in records:
            host = record["params"].get("host.hostname", record["name"])
            print(f"{record['jid']:>6}  {'':<15} {host:<29} {record['path']}")
        return 0
    for record in records:
        print(" ".join(_param_value(record, name) or "" for name in args))
    return 0


def jls_main() -> int:
    return run(jls_args)


# ---------------------------------------------------------------------------------------------------------
# jexec(8)


def jexec_args(args: list[str]) -> int:
    """``jexec jail command ...``: attach this process to the jail, then exec the command in it."""
    if args and args[0] == "-l":
        args = args[1:]
    if len(args) < 2:
        die(None, "usage: jexec [-l] [-u username | -U username] jail [command ...]", 64)
    key, command = args[0], args[1:]
    with state.transaction() as st:
        found = find(st, key)
        if found is None:
            die("jexec", f"jail \"{key}\" not found", 1)
        record = found[1]
        record["procs"] = [p for p in record.get("procs", []) if pid_alive(int(p[0]), p[1])]
        record["procs"].append([os.getpid(), proc_starttime(os.getpid())])
    sys.stdout.flush()
    os.environ[EXECED_ENV] = str(os.getpid())  # the program is this process: not another command
    try:
        os.execvp(command[0], command)
    except OSError as error:
        die("jexec", f"execvp: {command[0]}: {error.strerror}", 1)
    return 1


def jexec_main() -> int:
    return run(jexec_args)


# ---------------------------------------------------------------------------------------------------------
# devfs(8)


def _ruleset_number(text: str) -> int:
    number = strtol_strict(text, 10)
    if number is None or not 1 <= number <= MAX_RULESET:
        die("devfs", f"invalid ruleset: {text}", 1)
    assert number is not None
    return number


def _mount_ok(st: dict[str, Any], mount: str) -> None:
    """``devfs -m`` needs a devfs mount: the host's /dev or a jail's devfs."""
    if mount == "/dev":
        return
    if not any((j.get("devfs") or {}).get("mount") == mount for j in st.get("jails", {}).values()):
        die("devfs", f"{mount}: not a devfs mount", 1)


def _add_rule(st: dict[str, Any], ruleset: int, words: list[str]) -> None:
    rules: list[dict[str, Any]] = st.setdefault("devfs_rulesets", {}).setdefault(str(ruleset), [])
    number = max((int(r["number"]) for r in rules), default=0) + 100
    if words and words[0].isdigit():
        number, words = int(words[0]), words[1:]
    rule: dict[str, Any] = {"number": number, "path": None}
    while words[:1] == ["path"]:
        if len(words) < 2:
            die("devfs", "missing argument to path", 1)
        rule["path"], words = words[1], words[2:]
    if not words:
        die("devfs", "missing action", 1)
    action, rest = words[0], words[1:]
    if action in ("hide", "unhide") and not rest:
        rule["action"] = action
    elif action == "include" and len(rest) == 1:
        rule["action"], rule["arg"] = "include", _ruleset_number(rest[0].lstrip("$"))
    elif action in ("group", "user", "mode") and len(rest) == 1:
        rule["action"], rule["arg"] = action, rest[0]
    else:
        die("devfs", f"unknown action: {' '.join(words)}", 1)
    if any(int(r["number"]) == number for r in rules):
        die("devfs", f"ioctl DEVFSIO_RADD: File exists (rule {number} of ruleset {ruleset})", 1)
    rules.append(rule)


def devfs_args(args: list[str]) -> int:
    """``devfs [-m mount] rule [-s N] add|delset|show|showsets|applyset`` and ``devfs -m M ruleset N``."""
    mount = "/dev"
    if args[:1] == ["-m"]:
        if len(args) < 2:
            die("devfs", "option requires an argument -- m", 64)
        mount, args = args[1], args[2:]
    with state.transaction() as st:
        _mount_ok(st, mount)
        if args[:1] == ["ruleset"] and len(args) == 2:
            number = _ruleset_number(args[1])
            for jail in st.get("jails", {}).values():
                if (jail.get("devfs") or {}).get("mount") == mount:
                    jail["devfs"]["ruleset"] = number
            return 0
        if args[:1] != ["rule"]:
            die(None, "usage: devfs [-m mount-point] [-s ruleset] rule|ruleset ...", 64)
        args = args[1:]
        ruleset: int | None = None
        if args[:1] == ["-s"]:
            if len(args) < 2:
                die("devfs", "option requires an argument -- s", 64)
            ruleset, args = _ruleset_number(args[1]), args[2:]
        sets: dict[str, list[dict[str, Any]]] = st.setdefault("devfs_rulesets", {})
        command = args[0] if args else ""
        if command == "showsets":
            for number in sorted(int(n) for n, rules in sets.items() if rules):
                print(number)
            return 0
        if ruleset is None:
            die("devfs", f"rule {command}: no ruleset given (-s)", 1)
        assert ruleset is not None
        if command == "add":
            _add_rule(st, ruleset, args[1:])
        elif command == "delset":
            sets.pop(str(ruleset), None)
        elif command == "show":
            for rule in sorted(sets.get(str(ruleset), []), key=lambda r: int(r["number"])):
                words = [str(rule["number"])] + (["path", rule["path"]] if rule.get("path") else [])
                words += [rule["action"]] + ([str(rule["arg"])] if "arg" in rule else [])
                print(" ".join(words))
        elif command == "applyset":
            if str(ruleset) not in sets:
                die("devfs", f"ioctl DEVFSIO_SAPPLY: No such process (ruleset {ruleset})", 1)
        else:
            die("devfs", f"unknown command: {command}", 64)
    return 0


def devfs_main() -> int:
    return run(devfs_args)
