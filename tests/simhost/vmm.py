"""The simulated vmm(4) kernel side shared by bhyve, bhyvectl, the loaders and sysctl.

A VM is the regular file ``$SIMHOST_ROOT/dev/vmm/NAME`` (hivectl tests ``[ -e /dev/vmm/NAME ]`` just like
vm-bhyve). The file holds a small JSON document with what the kernel would know about the VM: its
memory size once a loader or bhyve set memory up, whether it is wired, who created it, and a random
generation id so that a running bhyve can tell "my VM was destroyed and re-created" from "still mine".

Also here: the nmdm(4) console pairs, which several tools open and which disappear when the last
holder goes away (nmdm(4)), and the table of running bhyve processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from . import paths
from .common import pid_alive, proc_starttime

VM_MAX_NAMELEN = 229


def vm_exists(name: str) -> bool:
    """Whether ``/dev/vmm/NAME`` exists."""
    return paths.vmm_node(name).is_file()


def read_vm(name: str) -> dict[str, Any] | None:
    """The kernel's view of VM ``name``; None if it does not exist."""
    try:
        with open(paths.vmm_node(name), encoding="utf-8") as fh:
            text = fh.read()
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        data: dict[str, Any] = json.loads(text) if text.strip() else {}
    except ValueError:
        data = {}
    return data


def write_vm(name: str, data: dict[str, Any]) -> None:
    """Write the VM record in place (the inode stays, as a reinit keeps the device node)."""
    node = paths.vmm_node(name)
    node.parent.mkdir(parents=True, exist_ok=True)
    with open(node, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.write("\n")


def create_vm(name: str, creator: str) -> dict[str, Any]:
    """``vm_create``: a new VM without memory. The caller checks that it did not exist."""
    data = {"name": name, "generation": os.urandom(16).hex(), "created": time.time(), "creator": creator,
            "memsize": None, "wired": False, "cpus": None}
    write_vm(name, data)
    return data


def reinit_vm(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """``vm_reinit``: the VM is reset; memory segments are kept (the kernel does not free sysmem)."""
    data["reinit"] = time.time()
    data.setdefault("generation", os.urandom(16).hex())
    write_vm(name, data)
    return data


def destroy_vm(name: str) -> bool:
    """``vm_destroy``: the device node goes away. Returns False if there was no such VM."""
    try:
        os.unlink(paths.vmm_node(name))
    except FileNotFoundError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------
# running bhyve processes


def live_running(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Running-bhyve records whose process is still alive (a SIGKILLed bhyve leaves a stale one)."""
    return {name: rec for name, rec in st.get("running", {}).items()
            if pid_alive(int(rec["pid"]), rec.get("starttime"))}


def prune_running(st: dict[str, Any]) -> None:
    """Drop records of processes that died without cleaning up (killed by SIGKILL)."""
    st["running"] = live_running(st)
    for pair, holders in list(st.get("nmdm", {}).items()):
        alive = [h for h in holders if pid_alive(int(h[0]), h[1])]
        if alive:
            st["nmdm"][pair] = alive
        else:
            del st["nmdm"][pair]
            remove_nmdm_nodes(pair)
    for iface in st.get("interfaces", {}).values():
        opener = iface.get("opened_by")
        if opener and not pid_alive(int(opener[0]), opener[1]):
            iface["opened_by"] = None
            if "RUNNING" in iface["flags"] and iface["kind"] == "tap":
                iface["flags"].remove("RUNNING")


def me() -> list[Any]:
    """This process as a holder entry: (pid, start time)."""
    return [os.getpid(), proc_starttime(os.getpid())]


# ---------------------------------------------------------------------------------------------------------
# nmdm(4)


def nmdm_pair(path: str) -> str | None:
    """For ``/dev/nmdm<X>A`` or ``B`` return ``nmdm<X>``; None if the path is not an nmdm device."""
    if not path.startswith("/dev/"):
        return None
    name = path[len("/dev/"):]
    if "/" in name or not name.startswith("nmdm") or len(name) <= 5 or name[-1] not in "AB":
        return None
    return name[:-1]


def open_nmdm(st: dict[str, Any], pair: str) -> None:
    """Opening either side creates both nodes; this process holds the pair until it exits."""
    for side in "AB":
        node = paths.dev(pair + side)
        node.parent.mkdir(parents=True, exist_ok=True)
        if not node.exists():
            node.write_bytes(b"")
    holders = st.setdefault("nmdm", {}).setdefault(pair, [])
    holder = me()
    if holder not in holders:
        holders.append(holder)


def release_nmdm(st: dict[str, Any]) -> None:
    """Called on exit: drop this process's holds; a pair nobody holds disappears."""
    mine = me()
    for pair, holders in list(st.get("nmdm", {}).items()):
        rest = [h for h in holders if h != mine and pid_alive(int(h[0]), h[1])]
        if rest:
            st["nmdm"][pair] = rest
        else:
            del st["nmdm"][pair]
            remove_nmdm_nodes(pair)


def remove_nmdm_nodes(pair: str) -> None:
    """Both sides vanish together."""
    for side in "AB":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.dev(pair + side))


def open_tty(st: dict[str, Any], path: str, hold: bool = True) -> bool:
    """Open a console device like a loader or bhyve would: a tty (nmdm pairs are created on open).

    With ``hold`` False it only checks. Under the simulated ``/dev`` only tty-like nodes count
    (``nmdm*``, ``tty*``, ``cua*``, ``pts/*``); a real path must be a character device that is a terminal.
    """
    from . import jails

    if jails.device_error(st, path):
        return False  # hidden by the jail's devfs ruleset
    pair = nmdm_pair(path)
    if pair is not None:
        from . import kld

        if not kld.is_loaded(st, "nmdm"):
            return False
        if hold:
            open_nmdm(st, pair)
        return True
    if paths.is_mapped(path):
        name = path[len("/dev/"):] if path.startswith("/dev/") else ""
        return os.path.exists(paths.host_path(path)) and name.startswith(("tty", "cua", "pts/"))
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def open_chardev(st: dict[str, Any], path: str, hold: bool = True) -> bool:
    """The loaders' console check (bhyveload ``altcons_open``): ``stdio``, or a character device.

    Under the simulated ``/dev`` every existing node counts as a character device (nmdm pairs are
    created on open); a real path must be one (``S_ISCHR``).
    """
    if path == "stdio":
        return True
    from . import jails

    if jails.device_error(st, path):
        return False
    if nmdm_pair(path) is not None:
        return open_tty(st, path, hold)
    if paths.is_mapped(path):
        return path.startswith("/dev/") and os.path.isfile(paths.host_path(path))
    import stat

    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def record_loader_run(st: dict[str, Any], tool: str, argv: list[str], vmname: str, status: int,
                      **details: Any) -> None:
    """Keep every loader run so tests can check what hivectl asked the loader to do."""
    st.setdefault("loader_runs", []).append({"tool": tool, "argv": argv, "vm": vmname, "status": status,
                                             "time": time.time(), **details})


def take_loader_exit(vmname: str) -> int:
    """The status a test asked the next loader run for ``vmname`` to end with (default 0: booted)."""
    path = paths.control(vmname + ".loader_exit")
    claimed = f"{path}.{os.getpid()}"
    try:
        os.rename(path, claimed)
    except OSError:
        return 0
    try:
        with open(claimed, encoding="utf-8") as fh:
            text = fh.read().strip()
    finally:
        os.unlink(claimed)
    try:
        return int(text)
    except ValueError:
        return 1
