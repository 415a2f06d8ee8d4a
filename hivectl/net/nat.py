"""NAT, port forwards and DHCP for a switch: pf anchors on FreeBSD, one nftables table on Linux, dnsmasq.

vm-bhyve dropped its built-in NAT in 1.2 because it rewrote the administrator's own pf.conf and
dnsmasq.conf (churchers#26, #103, #168). hivectl brings NAT back without touching anything it does not
own:

- FreeBSD: the rules live in the pf anchor ``hivectl/<switch>``, loaded with
  ``pfctl -a hivectl/<switch> -f <vm_dir>/.config/pf-<switch>.conf``. The main ruleset is the
  administrator's; it needs ``nat-anchor "hivectl/*"``, ``rdr-anchor "hivectl/*"`` and
  ``anchor "hivectl/*"`` once (docs/networking.md).
- Linux: the rules live in the table ``inet hivectl_<switch>``, replaced atomically by ``nft -f`` and
  deleted on destroy; no other table is read or changed.
- DHCP: one dnsmasq per NAT switch, bound to the bridge only (``--interface --bind-interfaces``, loopback
  excluded, no default config file), with its pid and lease files in ``vm_dir/.config``.

Everything here plans; the only host questions are read-only (is pf enabled, which interface holds the
default route, is our dnsmasq alive).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.net import names
from hivectl.net.switches import Switch, SwitchConfig
from hivectl.plan import Action, Call, Run, WriteFile
from hivectl.rcfile import atomic_write
from hivectl.records import field, record
from hivectl.safety.filelock import locked

LEASE_TIME = "12h"


# -- addresses --------------------------------------------------------------------------------------------
def dhcp_range(addr: ipaddress.IPv4Interface) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """The pool dnsmasq hands out: the upper three quarters of the subnet, leaving room for static guests.

    The bridge's own address is kept out of the pool (it sits below the pool, or the pool ends before it).
    """
    net = addr.network
    if net.prefixlen > 29:
        raise HivectlError(f"{addr}: a NAT switch needs at least a /29 to hand out addresses")
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - 1
    start = max(first, int(net.network_address) + net.num_addresses // 4)
    own = int(addr.ip)
    if start <= own <= last:
        if own - start >= last - own:
            last = own - 1
        else:
            start = own + 1
    return ipaddress.IPv4Address(start), ipaddress.IPv4Address(last)


def choose_subnet(switch: str, taken: Iterable[str]) -> ipaddress.IPv4Interface:
    """A private /24 for a NAT switch created without ``-a``: ``10.<a>.<b>.1/24`` from the switch name,
    moved on until it overlaps none of the ``taken`` networks (host addresses, other switches).

    Derived from the name so that the same switch gets the same subnet on every host.
    """
    clashes = []
    for text in taken:
        try:
            clashes.append(ipaddress.ip_interface(text).network)
        except ValueError:
            continue
    digest = hashlib.md5(switch.encode(), usedforsecurity=False).digest()
    seed = (digest[0] << 8 | digest[1]) % 0xFFFF
    for step in range(0x10000):
        value = (seed + step) % 0x10000
        net = ipaddress.IPv4Network(f"10.{value >> 8}.{value & 0xFF}.0/24")
        if value >> 8 == 0 or net.network_address == ipaddress.IPv4Address("10.255.255.0"):
            continue
        if not any(net.overlaps(other) for other in clashes):
            return ipaddress.IPv4Interface(f"{next(net.hosts())}/24")
    raise HivectlError("no free private /24 left in 10.0.0.0/8; give the switch an address with -a")


# -- rule text --------------------------------------------------------------------------------------------
def pf_rules(sw: Switch, bridge: str, uplink: str) -> str:
    """The anchor's rules: NAT out of the uplink, the port forwards, and a pass for the switch's traffic."""
    if sw.addr is None:
        raise HivectlError(f"switch {sw.name}: NAT needs an IPv4 address on the switch")
    net = sw.addr.network
    lines = [f"# hivectl NAT for switch {sw.name} (bridge {bridge}); pfctl -a {names.pf_anchor(sw.name)} -f <file>",
             f"nat on {uplink} inet from {net} to ! {net} -> ({uplink})"]
    for fwd in sw.forwards:
        lines.append(f"rdr pass on {uplink} inet proto {fwd.proto} from any to ({uplink}) port {fwd.host_port} "
                     f"-> {fwd.guest} port {fwd.guest_port}")
    lines.append(f"pass quick on {bridge} inet from {net} to any keep state")
    return "\n".join(lines) + "\n"


def nft_rules(sw: Switch, bridge: str) -> str:
    """The switch's nftables table, written to replace itself atomically (create, delete, define)."""
    if sw.addr is None:
        raise HivectlError(f"switch {sw.name}: NAT needs an IPv4 address on the switch")
    table = f"inet {names.nft_table(sw.name)}"
    net = sw.addr.network
    forwards = [f'\t\tiifname != "{bridge}" {f.proto} dport {f.host_port} dnat ip to {f.guest}:{f.guest_port}'
                for f in sw.forwards]
    return "\n".join([
        f"# hivectl NAT for switch {sw.name} (bridge {bridge}); nft -f <file>",
        f"table {table}",
        f"delete table {table}",
        f"table {table} {{",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        *forwards,
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f"\t\tip saddr {net} ip daddr != {net} masquerade",
        "\t}",
        "}",
    ]) + "\n"


# -- daemons ----------------------------------------------------------------------------------------------
def running_pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` if that process is alive (a stale file from before a reboot is ignored)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a zombie nobody has reaped yet is gone for our purposes (Linux only: FreeBSD has no /proc here)
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except (OSError, IndexError):
        pass
    return pid


def stop_daemon(pidfile: Path, timeout: float = 5.0) -> None:
    """SIGTERM the daemon named by ``pidfile``, wait for it to exit (SIGKILL after ``timeout``), drop the file.

    Waiting matters: a DHCP server restarted for a new address must not race the old one for its sockets.
    dnsmasq runs as ``nobody`` and cannot remove its own pid file from ``vm_dir/.config``, so we do.
    """
    pid = running_pid(pidfile)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while running_pid(pidfile) is not None:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    pidfile.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class NatPlanner:
    """Plans NAT and DHCP for one host platform; files live in ``config_dir`` (``vm_dir/.config``)."""

    def __init__(self, host: Host, platform: str, config_dir: Path) -> None:
        self.host = host
        self.platform = platform
        self.config_dir = config_dir

    # -- paths ------------------------------------------------------------------------------------------
    def rules_path(self, switch: str) -> Path:
        return self.config_dir / (f"pf-{switch}.conf" if self.platform == "freebsd" else f"nft-{switch}.nft")

    def pidfile(self, switch: str) -> Path:
        return self.config_dir / f"dnsmasq-{switch}.pid"

    def leasefile(self, switch: str) -> Path:
        return self.config_dir / f"dnsmasq-{switch}.leases"

    # -- host facts (read-only) -------------------------------------------------------------------------
    def uplink(self) -> str:
        """The interface holding the IPv4 default route (FreeBSD; pf needs it by name)."""
        result = self.host.run(["route", "-n", "get", "default"], check=False)
        for line in result.stdout.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "interface" and value.strip():
                return value.strip()
        raise HivectlError("there is no IPv4 default route, so NAT has no uplink (route -n get default)")

    def forwarding_on(self) -> bool:
        oid = "net.inet.ip.forwarding" if self.platform == "freebsd" else "net.ipv4.ip_forward"
        result = self.host.run(["sysctl", "-n", oid], check=False)
        return result.stdout.strip() == "1"

    def pf_enabled(self) -> bool | None:
        """True/False from ``pfctl -s info``; None when pf is not there at all."""
        result = self.host.run(["pfctl", "-s", "info"], check=False)
        if result.status != 0:
            return None
        return "Status: Enabled" in result.stdout

    # -- plans ------------------------------------------------------------------------------------------
    def loaded(self, switch: str) -> bool:
        """Whether the switch's rules are in the kernel (pf anchor has NAT rules / nft table exists)."""
        if self.platform == "freebsd":
            result = self.host.run(["pfctl", "-a", names.pf_anchor(switch), "-s", "nat"], check=False)
            return result.status == 0 and any(line.startswith("nat ") for line in result.stdout.splitlines())
        return self.host.run(["nft", "list", "table", "inet", names.nft_table(switch)], check=False).status == 0

    def rules(self, sw: Switch, bridge: str, unless_loaded: bool = False) -> list[Action]:
        """(Re)load the switch's NAT and forward rules; with ``unless_loaded``, nothing if they are current."""
        path = self.rules_path(sw.name)
        if self.platform == "freebsd":
            text = pf_rules(sw, bridge, self.uplink())
            load = Run(["pfctl", "-a", names.pf_anchor(sw.name), "-f", str(path)],
                       undo_argv=["pfctl", "-a", names.pf_anchor(sw.name), "-F", "all"])
        else:
            text = nft_rules(sw, bridge)
            load = Run(["nft", "-f", str(path)], undo_argv=["nft", "delete", "table", "inet", names.nft_table(sw.name)])
        if unless_loaded and _read(path) == text and self.loaded(sw.name):
            return []
        return [WriteFile(path, text, ["tee", str(path)], mode=0o600), load]

    def reload_from(self, conf: Path, sw: Switch, bridge: str) -> ReloadRules:
        """A reload of the switch's rules from ``system.conf`` as it is when applied (``switch forward``):
        planned *after* the config edit, so the kernel only ever gets forwards the file holds."""
        path = self.rules_path(sw.name)
        if self.platform == "freebsd":
            shown = [["tee", str(path)], ["pfctl", "-a", names.pf_anchor(sw.name), "-f", str(path)]]
        else:
            shown = [["tee", str(path)], ["nft", "-f", str(path)]]
        return ReloadRules(self, conf, sw.name, bridge, shown)

    def dnsmasq_argv(self, sw: Switch, bridge: str) -> list[str]:
        if sw.addr is None:
            raise HivectlError(f"switch {sw.name}: DHCP needs an IPv4 address on the switch")
        low, high = dhcp_range(sw.addr)
        loopback = "lo0" if self.platform == "freebsd" else "lo"
        return ["dnsmasq", "--conf-file=/dev/null", f"--pid-file={self.pidfile(sw.name)}",
                f"--dhcp-leasefile={self.leasefile(sw.name)}", f"--interface={bridge}",
                f"--except-interface={loopback}", "--bind-interfaces", "--dhcp-authoritative",
                f"--dhcp-range={low},{high},{sw.addr.netmask},{LEASE_TIME}"]

    def start(self, sw: Switch, bridge: str) -> list[Action]:
        """Everything a NAT switch needs beyond its bridge; idempotent (a running dnsmasq is kept)."""
        actions: list[Action] = []
        if self.platform == "freebsd" and self.host.run(["kldstat", "-q", "-m", "pf"], check=False).status != 0:
            actions.append(Run(["kldload", "-n", "pf"]))
        if not self.forwarding_on():
            if self.platform == "freebsd":
                actions.append(Run(["sysctl", "net.inet.ip.forwarding=1"]))
            else:
                actions.append(Run(["sysctl", "-w", "net.ipv4.ip_forward=1"]))
        actions += self.rules(sw, bridge, unless_loaded=True)
        pidfile = self.pidfile(sw.name)
        if running_pid(pidfile) is None:
            actions.append(Run(self.dnsmasq_argv(sw, bridge), undo_argv=["pkill", "-F", str(pidfile)]))
        return actions

    def stop(self, sw: Switch) -> list[Action]:
        """Stop DHCP and remove the rules; what is already gone is skipped."""
        actions: list[Action] = []
        pidfile = self.pidfile(sw.name)
        if running_pid(pidfile) is not None or pidfile.exists():
            actions.append(Call(["pkill", "-F", str(pidfile)], lambda: stop_daemon(pidfile)))
        if self.loaded(sw.name):
            if self.platform == "freebsd":
                actions.append(Run(["pfctl", "-a", names.pf_anchor(sw.name), "-F", "all"]))
            else:
                actions.append(Run(["nft", "delete", "table", "inet", names.nft_table(sw.name)]))
        for path in (self.rules_path(sw.name), self.leasefile(sw.name)):
            if path.exists():
                actions.append(Call(["rm", "-f", str(path)], functools.partial(path.unlink, missing_ok=True)))
        return actions


@record
class ReloadRules(Action):
    """Write a switch's rule file from ``system.conf`` as it is now and load it; undo puts the old back.

    Why not the rules computed at plan time: ``switch forward add`` and ``remove`` change ``system.conf``
    under its lock (``hivectl.plan.EditFile``), and two of them may run at once. The rules are therefore
    computed, written and loaded under that same lock, from the file as the edits left it, after the edit:
    whichever command reloads last loads every forward, and a refused edit (a port forwarded meanwhile)
    reloads nothing. When the load fails (pfctl(8) and ``nft -f`` load a file whole or not at all), the
    previous rule file is put back and the plan's undo restores ``system.conf``: nothing is half-applied.
    """

    nat: NatPlanner
    conf: Path
    switch: str
    bridge: str
    shown: list[list[str]]
    _previous: str | None = field(default=None, repr=False)
    _wrote: bool = field(default=False, repr=False)

    def argv(self) -> list[str]:
        return list(self.shown[-1])

    def argvs(self) -> list[list[str]]:
        return [list(argv) for argv in self.shown]

    def _load_argv(self, path: Path) -> list[str]:
        if self.nat.platform == "freebsd":
            return ["pfctl", "-a", names.pf_anchor(self.switch), "-f", str(path)]
        return ["nft", "-f", str(path)]

    def _flush_argv(self) -> list[str]:
        if self.nat.platform == "freebsd":
            return ["pfctl", "-a", names.pf_anchor(self.switch), "-F", "all"]
        return ["nft", "delete", "table", "inet", names.nft_table(self.switch)]

    def apply(self, host: Host) -> None:
        path = self.nat.rules_path(self.switch)
        with locked(self.conf):
            sw = SwitchConfig.load(self.conf).get(self.switch)
            if self.nat.platform == "freebsd":
                text = pf_rules(sw, self.bridge, self.nat.uplink())
            else:
                text = nft_rules(sw, self.bridge)
            self._previous = _read(path)
            atomic_write(path, text, 0o600)
            self._wrote = True
            try:
                host.run(self._load_argv(path))
            except BaseException:
                self._restore_file(path)
                raise

    def _restore_file(self, path: Path) -> None:
        if self._previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, self._previous, 0o600)
        self._wrote = False

    def undo(self, host: Host) -> None:
        """A later step failed: the previous rules back in the file and in the kernel."""
        if not self._wrote:
            return
        path = self.nat.rules_path(self.switch)
        with locked(self.conf):
            self._restore_file(path)
            host.run(self._load_argv(path) if self._previous is not None else self._flush_argv(), check=False)
