"""Stand-ins for the FreeBSD tools the switch code needs beyond the simulated host's own set.

``route`` (default-route lookup, the vxlan multicast route), ``ngctl`` (``show`` of an ng_bridge node) and
``dnsmasq`` (checks its arguments against the simulated interfaces, then daemonises like the real one and
writes its pid file) keep their state next to the simulated host's (``state.json``, key ``net``), so a
test sees what hivectl did. They follow the real tools' grammar and messages for the commands hivectl
issues and refuse everything else. The ``bin/`` wrappers are put first on PATH by the tests' fixture.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import sys
import time
from typing import Any

from tests.simhost import state
from tests.simhost.common import die, run
from tests.simhost.paths import root

DEFAULT_ROUTE = {"gateway": "192.0.2.1", "interface": "em0"}


def _net(st: dict[str, Any]) -> dict[str, Any]:
    net: dict[str, Any] = st.setdefault("net", {})
    net.setdefault("routes", {"default": dict(DEFAULT_ROUTE)})
    net.setdefault("netgraph", {})
    return net


# -- route(8) -------------------------------------------------------------------------------------------
def route(args: list[str]) -> int:
    """``route -n get default``, ``route add -net DEST -iface IF``, ``route delete -net DEST``."""
    words = [a for a in args if a != "-n"]
    if words[:2] == ["get", "default"] and len(words) == 2:
        routes = _net(state.load())["routes"]
        if "default" not in routes:
            die("route", "route has not been found", 1)
        rec = routes["default"]
        print("   route to: default\ndestination: default\n       mask: default\n"
              f"    gateway: {rec['gateway']}\n        fib: 0\n  interface: {rec['interface']}\n"
              "      flags: <UP,GATEWAY,DONE,STATIC>")
        return 0
    if len(words) >= 3 and words[0] in ("add", "delete") and words[1] == "-net":
        dest = words[2]
        try:
            ipaddress.ip_network(dest)
        except ValueError:
            die("route", f"{dest}: bad address", 1)
        with state.transaction() as st:
            routes = _net(st)["routes"]
            if words[0] == "add":
                if words[3:4] != ["-iface"] or len(words) != 5:
                    die("route", "usage: route add -net DEST -iface IF (only form simulated)", 64)
                if words[4] not in st["interfaces"]:
                    die("route", "writing to routing socket: Network is unreachable", 1)
                if dest in routes:
                    print("route: writing to routing socket: File exists", file=sys.stderr)
                    die("route", f"add net {dest}: gateway {words[4]} fib 0: route already in table", 1)
                routes[dest] = {"interface": words[4]}
                print(f"add net {dest}: gateway {words[4]}")
            else:
                if len(words) != 3:
                    die("route", "usage: route delete -net DEST", 64)
                if dest not in routes:
                    print("route: writing to routing socket: No such process", file=sys.stderr)
                    die("route", f"delete net {dest}: not in table", 1)
                del routes[dest]
                print(f"delete net {dest}")
        return 0
    die("route", "usage: route [-n] get default | add -net DEST -iface IF | delete -net DEST", 64)


# -- ngctl(8) ---------------------------------------------------------------------------------------------
def ngctl(args: list[str]) -> int:
    """``ngctl show NODE:`` for nodes a test created in ``state['net']['netgraph']``."""
    if len(args) != 2 or args[0] != "show" or not args[1].endswith(":"):
        die("ngctl", "usage: ngctl show NODE: (only form simulated)", 64)
    node = _net(state.load())["netgraph"].get(args[1][:-1])
    if node is None:
        die("ngctl", "send msg: No such file or directory", 71)
    hooks = node.get("hooks", [])
    print(f"  Name: {args[1][:-1]:<15} Type: bridge          ID: 00000005   Num hooks: {len(hooks)}")
    print("  Local hook      Peer name       Peer type    Peer ID         Peer hook")
    print("  ----------      ---------       ---------    -------         ---------")
    for hook in hooks:
        print(f"  {hook:<15} <unnamed>       socket       00000009        vmlink")
    return 0


# -- dnsmasq(8) ------------------------------------------------------------------------------------------
PIDS = "dnsmasq.pids"


def kill_daemons(sim_root: os.PathLike[str] | str) -> None:
    """SIGKILL every dnsmasq stand-in started on the simulated host whose root is ``sim_root`` (they
    daemonise like the real one, so a test that made a NAT switch must end them)."""
    try:
        with open(os.path.join(sim_root, PIDS)) as handle:
            pids = [int(word) for word in handle.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def dnsmasq(args: list[str]) -> int:
    """Check the options hivectl passes, then daemonise: the child waits for SIGTERM, its pid in the file."""
    opts: dict[str, str] = {}
    for arg in args:
        if not arg.startswith("--"):
            die("dnsmasq", f"bad command line options: try --help ({arg})", 1)
        key, _, value = arg[2:].partition("=")
        if key not in ("conf-file", "pid-file", "dhcp-leasefile", "interface", "except-interface", "bind-interfaces",
                       "dhcp-authoritative", "dhcp-range"):
            die("dnsmasq", f"bad command line options: try --help ({arg})", 1)
        opts[key] = value
    st = state.load()
    iface = st["interfaces"].get(opts.get("interface", ""))
    if iface is None:
        die("dnsmasq", f"unknown interface {opts.get('interface')}", 2)
    parts = opts.get("dhcp-range", "").split(",")
    if len(parts) != 4:
        die("dnsmasq", "bad dhcp-range", 1)
    nets = [ipaddress.ip_interface(f"{a['addr']}/{a['prefixlen']}").network for a in iface.get("inet", [])]
    low, high = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
    if not any(low in n and high in n for n in nets):
        die("dnsmasq", f"no address range available for DHCP request via {opts['interface']}", 1)
    pidfile = opts.get("pid-file", "")
    if not pidfile:
        die("dnsmasq", "this stand-in needs --pid-file", 1)
    base = root()
    child = os.fork()
    if child:
        deadline = time.monotonic() + 5
        while not os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.01)
        return 0
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    with open(base / PIDS, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    with open(pidfile, "w", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        signal.pause()


def main() -> int:
    tool = os.path.basename(sys.argv[0])
    return run({"route": route, "ngctl": ngctl, "dnsmasq": dnsmasq}[tool])
