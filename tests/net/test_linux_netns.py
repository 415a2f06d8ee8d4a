"""Switches, guest ports, NAT and DHCP for real on Linux, each test inside its own network namespaces.

Nothing here is simulated: bridges, taps, veth pairs, nftables rules and dnsmasq are the kernel's and the
real programs'. A client namespace asks dnsmasq for an address with busybox ``udhcpc``, pings the bridge,
reaches an "internet" namespace only through the switch's masquerade, and is reached back through a port
forward. The fixture removes every namespace (and the daemons in them) even when a test fails.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hivectl.errors import Conflict
from hivectl.net.nat import running_pid
from hivectl.net.netns import NetnsHost
from hivectl.net.ports import Port, plan_ports
from hivectl.plan import Plan
from hivectl.rcfile import read_values
from hivectl.safety.filelock import lock_name
from hivectl.store import Store
from tests.cli_helpers import is_journal_file
from tests.net.conftest import Namespaces, ns_hivectl, ns_run, veth, wait_for


def ok(ns: str, *args: str) -> str:
    result = ns_hivectl(ns, *args)
    assert result.status == 0, f"hivectl {' '.join(args)}: {result.err}"
    return result.out


def link(ns: str, name: str) -> dict[str, Any] | None:
    done = ns_run(ns, "ip", "-j", "-d", "addr", "show", "dev", name, check=False)
    if done.returncode != 0:
        return None
    data: list[dict[str, Any]] = json.loads(done.stdout)
    return data[0]


def addresses(entry: dict[str, Any]) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", []) if a.get("scope") != "link"]


def store() -> Store:
    from hivectl.context import Context

    return Context().store


def test_switch_commands_on_a_real_bridge(netns: Namespaces) -> None:
    ns = netns.new("sw")
    ns_run(ns, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
    ns_run(ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
    ok(ns, "switch", "create", "-i", "eth1", "-a", "10.50.0.1/24", "-m", "1400", "public")
    bridge = link(ns, "vm-public")
    assert bridge is not None and bridge["linkinfo"]["info_kind"] == "bridge"
    assert bridge["mtu"] == 1400 and addresses(bridge) == ["10.50.0.1/24"] and "UP" in bridge["flags"]
    assert bridge["ifalias"] == "vm/public"
    eth1 = link(ns, "eth1")
    assert eth1 is not None and eth1["master"] == "vm-public" and eth1["mtu"] == 1400
    table = ok(ns, "switch", "list").splitlines()
    assert table[1].split() == ["public", "standard", "vm-public", "10.50.0.1/24", "no", "1400", "-", "eth1"]

    ok(ns, "switch", "add", "public", "eth2")
    assert (link(ns, "eth2") or {}).get("master") == "vm-public"
    ok(ns, "switch", "remove", "public", "eth2")
    assert "master" not in (link(ns, "eth2") or {"master": "x"})
    ok(ns, "switch", "address", "public", "10.50.1.1/24")
    ok(ns, "switch", "address", "public", "fd00:50::1/64")
    assert addresses(link(ns, "vm-public") or {}) == ["10.50.1.1/24", "fd00:50::1/64"]
    ok(ns, "switch", "address", "public", "none")
    assert addresses(link(ns, "vm-public") or {}) == []

    # This kernel has no 802.1Q module: the failure rolls back (eth1 is put back) and the file is untouched.
    conf = netns.vm_dir / ".config" / "system.conf"
    before = conf.read_bytes()
    failed = ns_hivectl(ns, "switch", "vlan", "public", "10")
    if failed.status == 0:  # a kernel with VLAN support: check the child instead
        assert (link(ns, "eth1.10") or {}).get("master") == "vm-public"
        ok(ns, "switch", "vlan", "public", "0")
    else:
        assert "eth1.10" in failed.err and conf.read_bytes() == before
    assert (link(ns, "eth1") or {}).get("master") == "vm-public"

    ok(ns, "switch", "destroy", "public")
    assert link(ns, "vm-public") is None and "master" not in (link(ns, "eth1") or {"master": "x"})
    assert read_values(conf) == {"switch_list": ""}


def test_vxlan_and_manual_switches(netns: Namespaces) -> None:
    ns = netns.new("vx")
    ns_run(ns, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
    ns_run(ns, "ip", "link", "set", "eth1", "up")
    ns_run(ns, "ip", "link", "add", "br7", "type", "bridge")
    ok(ns, "switch", "create", "-t", "vxlan", "-i", "eth1", "-n", "42", "ov")
    ok(ns, "switch", "create", "-t", "manual", "-b", "br7", "lan")
    vx = link(ns, "vxlan42")
    assert vx is not None and vx["master"] == "vm-ov" and vx["linkinfo"]["info_data"]["id"] == 42
    assert vx["linkinfo"]["info_data"]["group"] == "239.186.253.155"  # as on FreeBSD: md5("ov") = ba fd 9b
    assert "UP" in (link(ns, "br7") or {}).get("flags", [])
    refused = ns_hivectl(ns, "switch", "create", "-t", "vale", "vl")
    assert refused.status == 2 and "FreeBSD" in refused.err
    ok(ns, "switch", "destroy", "ov")
    ok(ns, "switch", "destroy", "lan")
    assert link(ns, "vxlan42") is None and link(ns, "vm-ov") is None and link(ns, "br7") is not None


GUEST = """\
loader="uefi"
cpu="1"
memory="256M"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:01"
network1_type="virtio-net"
network1_device="eth3"
network2_type="e1000"
network2_mtu="1400"
"""


def guest_ports(ns: str, vm_dir: Path, name: str, text: str) -> list[Port]:
    (vm_dir / name).mkdir(exist_ok=True)
    (vm_dir / name / f"{name}.conf").write_text(text)
    st = store()
    ref = st.get(name)
    return plan_ports(NetnsHost(ns), st, ref, ref.config(), "linux")


def test_guest_ports_on_linux_bridges(netns: Namespaces) -> None:
    ns = netns.new("port")
    ns_run(ns, "ip", "link", "add", "eth3", "type", "veth", "peer", "name", "eth3p")
    ok(ns, "switch", "create", "-m", "9000", "-p", "public")
    ports = guest_ports(ns, netns.vm_dir, "web", GUEST)
    assert [(p.ifname, p.backend, p.bridge, p.mtu, p.created) for p in ports] == [
        ("hv0-web", "hv0-web", "vm-public", 9000, True),
        ("eth3", "eth3", "", None, False),
        ("hv2-web", "hv2-web", "", 1400, True),
    ]
    host = NetnsHost(ns)
    for port in ports:
        Plan(list(port.setup)).apply(host)
    tap = link(ns, "hv0-web")
    assert tap is not None and tap["linkinfo"]["info_kind"] == "tun" and tap["master"] == "vm-public"
    assert tap["ifalias"] == "vmnet/web/0/public" and tap["mtu"] == 9000
    assert tap["linkinfo"]["info_slave_data"]["isolated"] is True, "private switch: isolated bridge port"
    assert (link(ns, "eth3") or {}).get("ifalias") == "vmnet/web/1/custom"
    loose = link(ns, "hv2-web")
    assert loose is not None and "master" not in loose and loose["mtu"] == 1400
    info = json.loads(ok(ns, "switch", "info", "--json", "public"))[0]
    assert [(p["device"], p["vm"], p["nic"], p["flags"]) for p in info["ports"]] == [
        ("hv0-web", "web", 0, ["PRIVATE"])]

    # A crashed run left the taps behind: the next plan removes this guest's own leftovers first.
    again = guest_ports(ns, netns.vm_dir, "web", GUEST)
    assert again[0].setup[0].argv() == ["ip", "link", "del", "dev", "hv0-web"]
    for port in ports:
        for action in port.teardown:
            host.run(action.argv())
    assert link(ns, "hv0-web") is None and link(ns, "hv2-web") is None and link(ns, "eth3") is not None

    ns_run(ns, "ip", "tuntap", "add", "dev", "hv0-web", "mode", "tap")
    ns_run(ns, "ip", "link", "set", "dev", "hv0-web", "alias", "somebody else's")
    with pytest.raises(Conflict, match="not a leftover"):
        guest_ports(ns, netns.vm_dir, "web", GUEST)


# busybox wget (static) crashes on this machine; a two-line Python client does the same job.
FETCH = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())"


def _lease(ns: str) -> tuple[str, str]:
    """Ask for an address with busybox udhcpc; returns (address, server)."""
    done = ns_run(ns, "busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0", "-s", "/bin/true", "-t", "10", "-T", "1",
                  timeout=40)
    match = re.search(r"lease of ([0-9.]+) obtained from ([0-9.]+)", done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    return match.group(1), match.group(2)


def test_nat_dhcp_and_port_forward_end_to_end(netns: Namespaces, tmp_path: Path) -> None:
    host_ns, client, outside = netns.new("host"), netns.new("client"), netns.new("inet")
    # The "internet": 198.51.100.0/24 on a link to the host; it has no route back to the NAT subnet.
    veth(host_ns, "up0", outside, "eth0")
    ns_run(host_ns, "ip", "addr", "add", "198.51.100.2/24", "dev", "up0")
    ns_run(host_ns, "ip", "link", "set", "up0", "up")
    ns_run(host_ns, "ip", "route", "add", "default", "via", "198.51.100.1")
    ns_run(outside, "ip", "addr", "add", "198.51.100.1/24", "dev", "eth0")
    ns_run(outside, "ip", "link", "set", "eth0", "up")

    ok(host_ns, "switch", "create", "--nat", "natsw")
    values = read_values(netns.vm_dir / ".config" / "system.conf")
    bridge_ip = ipaddress.ip_interface(values["addr_natsw"])
    assert values["nat_natsw"] == "yes" and bridge_ip.network.prefixlen == 24
    assert ns_run(host_ns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    table = ns_run(host_ns, "nft", "list", "table", "inet", "hivectl_natsw").stdout
    assert f"ip saddr {bridge_ip.network} ip daddr != {bridge_ip.network} masquerade" in table
    pidfile = netns.vm_dir / ".config" / "dnsmasq-natsw.pid"
    assert running_pid(pidfile) is not None

    # The guest NIC: a veth into the client namespace, attached by the port planner (networkN_device).
    veth(host_ns, "vmc0", client, "eth0")
    ns_run(client, "ip", "link", "set", "eth0", "up")
    ports = guest_ports(host_ns, netns.vm_dir, "client",
                        'loader="uefi"\nnetwork0_type="virtio-net"\nnetwork0_switch="natsw"\nnetwork0_device="vmc0"\n')
    Plan(list(ports[0].setup)).apply(NetnsHost(host_ns))
    assert (link(host_ns, "vmc0") or {}).get("master") == "vm-natsw"

    leased, server = _lease(client)
    assert server == str(bridge_ip.ip)
    assert ipaddress.ip_address(leased) in bridge_ip.network and leased != server
    assert leased in (netns.vm_dir / ".config" / "dnsmasq-natsw.leases").read_text()
    ns_run(client, "ip", "addr", "add", f"{leased}/24", "dev", "eth0")
    ns_run(client, "ip", "route", "add", "default", "via", server)
    ns_run(client, "ping", "-c", "1", "-W", "3", server)
    ns_run(client, "ping", "-c", "1", "-W", "3", "198.51.100.1")  # only possible through the masquerade

    ok(host_ns, "switch", "forward", "add", "natsw", "tcp", "8080", f"{leased}:80")
    assert f"dnat ip to {leased}:80" in ns_run(host_ns, "nft", "list", "table", "inet", "hivectl_natsw").stdout
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the guest\n")
    server_proc = subprocess.Popen(["ip", "netns", "exec", client, "busybox", "httpd", "-f", "-p", "80", "-h",
                                    str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def fetched() -> bool:
            got = ns_run(outside, sys.executable, "-c", FETCH, "http://198.51.100.2:8080/", check=False)
            return got.stdout == "hello from the guest\n"
        assert wait_for(fetched, timeout=10, step=0.2), "the port forward does not reach the guest"
    finally:
        server_proc.kill()
        server_proc.wait(timeout=5)
    ok(host_ns, "switch", "forward", "remove", "natsw", "tcp", "8080")
    assert "dnat" not in ns_run(host_ns, "nft", "list", "table", "inet", "hivectl_natsw").stdout

    pid = running_pid(pidfile)
    ok(host_ns, "switch", "destroy", "-f", "natsw")
    assert pid is not None and running_pid(pidfile) is None
    assert ns_run(host_ns, "nft", "list", "table", "inet", "hivectl_natsw", check=False).returncode != 0
    assert link(host_ns, "vm-natsw") is None
    # Nothing of the switch is left; system.conf's sibling lock (hivectl/safety/filelock.py) stays by design.
    left = sorted(p.name for p in (netns.vm_dir / ".config").iterdir()
                  if p.name != lock_name("system.conf") and not is_journal_file(p))
    assert left == ["null.iso", "system.conf"]


def test_two_nat_switches_run_side_by_side_and_init_brings_them_back(netns: Namespaces) -> None:
    ns = netns.new("boot")
    ns_run(ns, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
    ok(ns, "switch", "create", "--nat", "-a", "10.61.0.1/24", "nat1")
    ok(ns, "switch", "create", "--nat", "-a", "10.62.0.1/24", "nat2")
    ok(ns, "switch", "create", "-i", "eth1", "-a", "10.63.0.1/24", "plain")
    config = netns.vm_dir / ".config"
    assert running_pid(config / "dnsmasq-nat1.pid") and running_pid(config / "dnsmasq-nat2.pid")
    assert ok(ns, "switch", "init", "--dry-run") == ""
    # A reboot of this "host": daemons, rules and bridges are gone; the files in vm_dir remain.
    for name in ("nat1", "nat2"):
        pid = running_pid(config / f"dnsmasq-{name}.pid")
        assert pid is not None
        import os
        import signal

        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda name=name: running_pid(config / f"dnsmasq-{name}.pid") is None)
        ns_run(ns, "nft", "delete", "table", "inet", f"hivectl_{name}")
        ns_run(ns, "ip", "link", "del", f"vm-{name}")
    ns_run(ns, "ip", "link", "del", "vm-plain")
    ok(ns, "init")
    for name, subnet in (("nat1", "10.61.0.1/24"), ("nat2", "10.62.0.1/24"), ("plain", "10.63.0.1/24")):
        assert addresses(link(ns, f"vm-{name}") or {}) == [subnet]
    assert (link(ns, "eth1") or {}).get("master") == "vm-plain"
    assert running_pid(config / "dnsmasq-nat1.pid") and running_pid(config / "dnsmasq-nat2.pid")
    assert ok(ns, "switch", "init", "--dry-run") == ""
    for name in ("nat1", "nat2", "plain"):
        ok(ns, "switch", "destroy", name)
    assert running_pid(config / "dnsmasq-nat1.pid") is None and running_pid(config / "dnsmasq-nat2.pid") is None
