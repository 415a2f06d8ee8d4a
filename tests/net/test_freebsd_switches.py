"""Every switch type against the simulated FreeBSD host: created, listed, changed, destroyed.

Each command runs through the real command line; the assertions are on the simulated kernel's state
(bridges, members, VLAN children, MTUs, addresses, pf anchors) and on system.conf, so an argv the real
``ifconfig`` would refuse, or a change that does not happen, fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hivectl.rcfile import read_values
from tests.cli_helpers import is_journal_file
from tests.net.conftest import FreeBSD, cli


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.status == 0, f"hivectl {' '.join(args)}: {result.err}"
    return result.out


def alive(pid: int) -> bool:
    """A live (not zombie) process: the daemon's parent exits, so init reaps it whenever it likes."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def addrs(iface: dict[str, object], family: str = "inet") -> list[str]:
    return [f"{a['addr']}/{a['prefixlen']}" for a in iface[family]]  # type: ignore[index, union-attr]


def test_standard_switch_full_life(freebsd: FreeBSD) -> None:
    freebsd.system_conf.write_text("# my switches\nconsole=\"nmdm\"\n")
    freebsd.add_nic("em1")
    ok("switch", "create", "-i", "em0", "-a", "10.0.0.1/24", "-m", "9000", "public")
    ifs = freebsd.ifs()
    bridge = ifs["vm-public"]
    assert bridge["kind"] == "bridge"
    assert set(bridge["groups"]) == {"bridge", "vm-switch", "viid-4c918@"}  # md5("public") = 4c9184f3...
    assert addrs(bridge) == ["10.0.0.1/24"] and "UP" in bridge["flags"]
    assert bridge["mtu"] == 9000 and ifs["em0"]["mtu"] == 9000
    assert freebsd.members("vm-public") == ["em0"]
    values = read_values(freebsd.system_conf)
    assert values["switch_list"] == "public" and values["type_public"] == "standard"
    assert (values["ports_public"], values["addr_public"], values["mtu_public"]) == ("em0", "10.0.0.1/24", "9000")
    assert freebsd.system_conf.read_text().startswith("# my switches\nconsole=\"nmdm\"\n")

    table = ok("switch", "list").splitlines()
    assert table[0].split() == ["NAME", "TYPE", "IFACE", "ADDRESS", "PRIVATE", "MTU", "VLAN", "PORTS"]
    assert table[1].split() == ["public", "standard", "vm-public", "10.0.0.1/24", "no", "9000", "-", "em0"]
    rows = json.loads(ok("switch", "list", "--json"))
    assert rows[0]["iface"] == "vm-public" and rows[0]["ports"] == ["em0"] and rows[0]["mtu"] == 9000

    ok("switch", "add", "public", "em1")
    assert freebsd.members("vm-public") == ["em0", "em1"]
    assert freebsd.ifs()["em1"]["mtu"] == 9000
    assert read_values(freebsd.system_conf)["ports_public"] == "em0 em1"

    ok("switch", "vlan", "public", "10")
    ifs = freebsd.ifs()
    assert freebsd.members("vm-public") == ["em0.10", "em1.10"]
    for port in ("em0", "em1"):
        child = ifs[f"{port}.10"]
        assert (child["kind"], child["vlan"], child["vlandev"]) == ("vlan", 10, port)
        assert "vm-vlan" in child["groups"] and child["description"] == f"vm-vlan/public/{port}.10"
    assert read_values(freebsd.system_conf)["vlan_public"] == "10"

    ok("switch", "vlan", "public", "0")
    assert freebsd.members("vm-public") == ["em0", "em1"]
    assert "em0.10" not in freebsd.ifs() and "vlan_public" not in read_values(freebsd.system_conf)

    ok("switch", "remove", "public", "em1")
    assert freebsd.members("vm-public") == ["em0"]
    assert read_values(freebsd.system_conf)["ports_public"] == "em0"

    ok("switch", "address", "public", "10.0.1.1/24")
    ok("switch", "address", "public", "fd00:1::1/64")
    bridge = freebsd.ifs()["vm-public"]
    assert addrs(bridge) == ["10.0.1.1/24"] and "fd00:1::1/64" in addrs(bridge, "inet6")
    table = ok("switch", "list").splitlines()
    assert table[1].split()[3] == "10.0.1.1/24" and table[2].split() == ["fd00:1::1/64"]
    ok("switch", "address", "public", "none")
    bridge = freebsd.ifs()["vm-public"]
    assert addrs(bridge) == [] and "fd00:1::1/64" not in addrs(bridge, "inet6")
    values = read_values(freebsd.system_conf)
    assert "addr_public" not in values and "addr6_public" not in values

    ok("switch", "private", "public", "on")
    assert read_values(freebsd.system_conf)["private_public"] == "yes"
    ok("switch", "private", "public", "off")
    assert "private_public" not in read_values(freebsd.system_conf)

    ok("switch", "destroy", "public")
    ifs = freebsd.ifs()
    assert "vm-public" not in ifs and sorted(ifs) == ["em0", "em1", "lo0"]
    assert "PROMISC" not in ifs["em0"]["flags"]
    assert freebsd.system_conf.read_text() == "# my switches\nconsole=\"nmdm\"\nswitch_list=\"\"\n"


def test_manual_vale_netgraph_vxlan(freebsd: FreeBSD) -> None:
    assert freebsd.run("ifconfig", "bridge", "create", "up").stdout.strip() == "bridge0"
    ok("switch", "create", "-t", "manual", "-b", "bridge0", "-p", "lan")
    ok("switch", "create", "-t", "vale", "vl")
    ok("switch", "create", "-t", "netgraph", "ng")
    ok("switch", "create", "-t", "vxlan", "-i", "em0", "-n", "42", "-a", "10.42.0.1/24", "ov")
    ifs = freebsd.ifs()
    assert {"vm-switch", "viid-73f50@"} <= set(ifs["bridge0"]["groups"])  # md5("lan") = 73f50c9f...
    vx = ifs["vxlan42"]
    assert vx["vxlan"]["id"] == 42 and vx["vxlan"]["local"] == "192.0.2.10" and vx["vxlan"]["dev"] == "em0"
    assert vx["vxlan"]["group"] == "239.186.253.155"  # 239 + first three bytes of md5("ov") = ba fd 9b
    assert freebsd.members("vm-ov") == ["vxlan42"] and addrs(ifs["vm-ov"]) == ["10.42.0.1/24"]
    routes = freebsd.sim.state()["net"]["routes"]
    assert routes["239.186.253.155/32"] == {"interface": "em0"}
    assert sorted(ifs) == ["bridge0", "em0", "lo0", "vm-ov", "vxlan42"], "vale and netgraph make nothing"

    rows = {r.split()[0]: r.split() for r in ok("switch", "list").splitlines()[1:]}
    assert rows["lan"] == ["lan", "manual", "bridge0", "n/a", "yes", "n/a", "n/a", "n/a"]
    assert rows["vl"] == ["vl", "vale", "vale28b3a", "n/a", "n/a", "n/a", "n/a", "n/a"]  # md5("vl") = 28b3a...
    assert rows["ng"] == ["ng", "netgraph", "ng:", "n/a", "n/a", "n/a", "n/a", "n/a"]
    assert rows["ov"] == ["ov", "vxlan", "vm-ov", "10.42.0.1/24", "no", "n/a", "42", "em0"]
    for kind, name in (("manual", "lan"), ("vale", "vl"), ("netgraph", "ng"), ("vxlan", "ov")):
        result = cli("switch", "add", name, "em0")
        assert result.status != 0 and kind in result.err

    for name in ("lan", "vl", "ng", "ov"):
        ok("switch", "destroy", name)
    ifs = freebsd.ifs()
    assert sorted(ifs) == ["bridge0", "em0", "lo0"], "a manual switch's bridge belongs to the administrator"
    assert ifs["bridge0"]["groups"] == ["bridge"]
    assert freebsd.sim.state()["net"]["routes"] == {"default": {"gateway": "192.0.2.1", "interface": "em0"}}
    assert read_values(freebsd.system_conf) == {"switch_list": ""}


def test_vale_port_name_matches_vm_bhyve(freebsd: FreeBSD) -> None:
    ok("switch", "create", "-t", "vale", "vl")
    row = json.loads(ok("switch", "list", "--json"))[0]
    assert row["iface"] == "vale28b3a"  # "vale" + md5("vl")[:5], as `md5 -qs vl` prints it


def test_long_name_gets_kernel_bridge_with_description(freebsd: FreeBSD) -> None:
    ok("switch", "create", "-i", "em0", "-n", "7", "customers_east")
    dry = ok("switch", "create", "--dry-run", "customers_west").splitlines()
    assert json.loads(dry[0])[:3] == ["ifconfig", "bridge", "create"]
    assert json.loads(dry[1]) == ["ifconfig", "<bridge of customers_west>", "link", "random"]
    ok("switch", "create", "-a", "10.3.0.1/24", "customers_west")
    ifs = freebsd.ifs()
    east = [n for n, i in ifs.items() if i.get("description") == "vm/customers_east"]
    west = [n for n, i in ifs.items() if i.get("description") == "vm/customers_west"]
    assert east == ["bridge0"] and west == ["bridge1"]
    assert freebsd.members("bridge0") == ["em0.7"] and addrs(ifs["bridge1"]) == ["10.3.0.1/24"]
    rows = {r["name"]: r for r in json.loads(ok("switch", "list", "--json"))}
    assert rows["customers_east"]["iface"] == "bridge0" and rows["customers_west"]["iface"] == "bridge1"
    ok("switch", "destroy", "customers_east")
    ok("switch", "destroy", "customers_west")
    assert sorted(freebsd.ifs()) == ["em0", "lo0"]


BAD_INPUT = [
    (["create", "bad;name"], ["name", "'bad;name'"]),
    (["create", "-n", "5000", "sw"], ["-n", "'5000'", "0 to 4094"]),
    (["create", "-m", "70000", "sw"], ["-m", "'70000'", "576 to 9000"]),
    (["create", "-a", "10.0.0.300/24", "sw"], ["-a", "'10.0.0.300/24'"]),
    (["create", "-a", "10.0.0.0/24", "sw"], ["-a", "network's own"]),
    (["create", "-t", "hub", "sw"], ["-t", "'hub'", "standard"]),
    (["create", "-i", "em0;reboot", "sw"], ["-i", "'em0;reboot'"]),
    (["create", "-i", "em7", "sw"], ["em7", "does not exist"]),
    (["create", "-b", "bridge0", "sw"], ["-b", "standard"]),
    (["create", "-t", "manual", "sw"], ["-b BRIDGE"]),
    (["create", "-t", "manual", "-b", "em0", "sw"], ["em0", "not a bridge"]),
    (["create", "-t", "vxlan", "-i", "em0", "sw"], ["VNI"]),
    (["create", "-t", "vale", "-a", "10.0.0.1/24", "sw"], ["-a", "vale"]),
    (["create", "public"], ["public", "already exists"]),
    (["create", "--nat", "-i", "em0", "sw"], ["NAT", "-i"]),
    (["create", "sw-1"], ["name", "'sw-1'", "letters, digits and '_'"]),
    (["create", "--nat", "-a", "10.0.0.1/30", "sw"], ["/29"]),
    (["vlan", "public", "4095"], ["vlan", "'4095'"]),
    (["vlan", "nosuch", "3"], ["nosuch", "does not exist"]),
    (["address", "public", "300.1.1.1/24"], ["address", "'300.1.1.1/24'"]),
    (["address", "public", "10.0.0.1/24"], ["already"]),
    (["private", "public", "maybe"], ["private", "'maybe'"]),
    (["add", "public", "em0"], ["em0", "already"]),
    (["add", "public", "em9"], ["em9", "does not exist"]),
    (["remove", "public", "em5"], ["em5", "not a port"]),
    (["destroy", "nosuch"], ["nosuch"]),
    (["forward", "add", "public", "tcp", "80", "10.0.0.5:80"], ["NAT"]),
]


def test_bad_input_changes_nothing(freebsd: FreeBSD) -> None:
    """Each refused command names the option or key and the value, and leaves file and host untouched."""
    ok("switch", "create", "-i", "em0", "-a", "10.0.0.1/24", "public")
    conf_before = freebsd.system_conf.read_bytes()
    state_before = freebsd.sim.state()
    for args, words in BAD_INPUT:
        result = cli("switch", *args)
        assert result.status in (1, 2), (args, result.out)
        for word in words:
            assert word in result.err, (args, result.err)
        assert result.err.count("\n") == 1 and result.err.startswith("hivectl: "), (args, result.err)
        assert freebsd.system_conf.read_bytes() == conf_before, args
        state_after = freebsd.sim.state()
        assert state_after["interfaces"] == state_before["interfaces"], args
        assert state_after.get("net") == state_before.get("net"), args


def test_long_nat_name_is_refused_with_reason(freebsd: FreeBSD) -> None:
    result = cli("switch", "create", "--nat", "guests_behind_nat")
    assert result.status == 1 and "12 characters" in result.err and "'guests_behind_nat'" in result.err


def test_failed_step_rolls_back(freebsd: FreeBSD) -> None:
    """A port that cannot join (em0 already belongs to another bridge) leaves no half-made switch."""
    assert freebsd.run("ifconfig", "bridge", "create", "addm", "em0", "up").returncode == 0
    before = freebsd.sim.state()["interfaces"]
    result = cli("switch", "create", "-i", "em0", "-a", "10.0.0.1/24", "public")
    assert result.status == 1 and "BRDGADD em0" in result.err
    assert freebsd.sim.state()["interfaces"] == before
    assert "public" not in freebsd.system_conf.read_text()


def test_init_recreates_and_is_idempotent(freebsd: FreeBSD) -> None:
    freebsd.add_nic("em1")
    freebsd.run("ifconfig", "bridge", "create", "up")
    ok("switch", "create", "-i", "em1", "-n", "20", "-a", "10.1.0.1/24", "-m", "9000", "office")
    ok("switch", "create", "-t", "manual", "-b", "bridge0", "lan")
    ok("switch", "create", "-t", "vxlan", "-i", "em0", "-n", "9", "ov")
    assert ok("switch", "init", "--dry-run") == "", "nothing to do right after create"
    # A host reboot: every cloned interface is gone, the manual bridge comes back from rc.conf untagged.
    with freebsd.sim.edit() as data:
        for name in list(data["interfaces"]):
            if data["interfaces"][name]["cloner"] is not None:
                del data["interfaces"][name]
        data["interfaces"]["em1"]["mtu"] = 1500
        data["net"]["routes"] = {"default": {"gateway": "192.0.2.1", "interface": "em0"}}
    for node in (freebsd.sim.root / "dev").glob("tap*"):
        node.unlink()
    freebsd.run("ifconfig", "bridge0", "create")
    assert cli("init").status == 0
    ifs = freebsd.ifs()
    assert freebsd.members("vm-office") == ["em1.20"] and ifs["vm-office"]["mtu"] == 9000
    assert addrs(ifs["vm-office"]) == ["10.1.0.1/24"] and ifs["em1"]["mtu"] == 9000
    assert {"vm-switch", "viid-73f50@"} <= set(ifs["bridge0"]["groups"]) and "UP" in ifs["bridge0"]["flags"]
    assert freebsd.members("vm-ov") == ["vxlan9"]
    assert ok("switch", "init", "--dry-run") == ""
    assert ok("init", "--dry-run").count("ifconfig") == 0
    # `service netif restart` drops the bridge address; init puts it back and touches nothing else.
    freebsd.run("ifconfig", "vm-office", "inet", "10.1.0.1", "delete")
    assert [json.loads(line) for line in ok("switch", "init", "--dry-run").splitlines()] == [
        ["ifconfig", "vm-office", "inet", "10.1.0.1/24"]]
    ok("switch", "init")
    assert addrs(freebsd.ifs()["vm-office"]) == ["10.1.0.1/24"]


def test_dry_run_changes_nothing(freebsd: FreeBSD) -> None:
    before = freebsd.sim.state()["interfaces"]
    out = ok("switch", "create", "-i", "em0", "-n", "3", "-a", "10.0.0.1/24", "--dry-run", "public")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == ["ifconfig", "bridge", "create", "group", "viid-4c918@", "name", "vm-public", "group",
                        "vm-switch", "up"]
    assert ["ifconfig", "vm-public", "addm", "em0.3"] in lines
    assert lines[-1][:3] == ["sysrc", "-f", str(freebsd.system_conf)]
    assert freebsd.sim.state()["interfaces"] == before
    assert "public" not in freebsd.system_conf.read_text()


def test_info_shows_members_guests_and_host_address_warning(freebsd: FreeBSD) -> None:
    ok("switch", "create", "-i", "em0", "public")
    freebsd.run("ifconfig", "tap5", "create", "description", "vmnet/web/0/public", "up")
    freebsd.run("ifconfig", "vm-public", "addm", "tap5")
    result = cli("switch", "info", "public")
    assert result.status == 0
    assert "em0 is a member of vm-public but still holds 192.0.2.10/24" in result.err
    assert "Virtual Switch: public" in result.out and "device: tap5" in result.out and "vm: web" in result.out
    data = json.loads(ok("switch", "info", "--json", "public"))[0]
    ports = {p["device"]: p for p in data["ports"]}
    assert ports["tap5"]["vm"] == "web" and ports["tap5"]["nic"] == 0 and ports["em0"]["kind"] == "port"
    # Moving the address to the bridge silences the warning.
    freebsd.run("ifconfig", "em0", "inet", "192.0.2.10", "delete")
    ok("switch", "address", "public", "192.0.2.10/24")
    result = cli("switch", "info", "public")
    assert result.status == 0 and result.err == ""
    destroy = cli("switch", "destroy", "public")
    assert destroy.status == 1 and "web (tap5)" in destroy.err, "a running guest's switch is not pulled away"
    ok("switch", "destroy", "-f", "public")


def test_nat_switch_with_pf_anchor_dhcp_and_forwards(freebsd: FreeBSD) -> None:
    from hivectl.net.nat import running_pid

    ok("switch", "create", "--nat", "-a", "10.77.0.1/24", "natsw")
    st = freebsd.sim.state()
    assert "pf.ko" in [e["file"] for e in st["kld"]["loaded"]]
    assert st["sysctl"]["net.inet.ip.forwarding"] == "1"
    assert st["pf"]["anchors"]["hivectl/natsw"]["nat"] == [
        "nat on em0 inet from 10.77.0.0/24 to ! 10.77.0.0/24 -> (em0)"]
    assert st["pf"]["anchors"]["hivectl/natsw"]["rules"] == [
        "pass quick on vm-natsw inet from 10.77.0.0/24 to any keep state"]
    pidfile = freebsd.vm_dir / ".config" / "dnsmasq-natsw.pid"
    assert running_pid(pidfile) is not None
    values = read_values(freebsd.system_conf)
    assert (values["nat_natsw"], values["addr_natsw"]) == ("yes", "10.77.0.1/24")

    ok("switch", "forward", "add", "natsw", "tcp", "8080", "10.77.0.50:80")
    ok("switch", "forward", "add", "natsw", "udp", "5353", "10.77.0.51:53")
    assert freebsd.sim.state()["pf"]["anchors"]["hivectl/natsw"]["rdr"] == [
        "rdr pass on em0 inet proto tcp from any to (em0) port 8080 -> 10.77.0.50 port 80",
        "rdr pass on em0 inet proto udp from any to (em0) port 5353 -> 10.77.0.51 port 53"]
    listed = json.loads(ok("switch", "forward", "list", "--json", "natsw"))
    assert listed[0] == {"proto": "tcp", "host_port": 8080, "guest": "10.77.0.50", "guest_port": 80}
    bad = cli("switch", "forward", "add", "natsw", "tcp", "8080", "10.77.0.9:22")
    assert bad.status == 1 and "already forwarded" in bad.err
    bad = cli("switch", "forward", "add", "natsw", "tcp", "2222", "10.99.0.9:22")
    assert bad.status == 1 and "not on switch natsw's network" in bad.err
    ok("switch", "forward", "remove", "natsw", "udp", "5353")
    assert len(freebsd.sim.state()["pf"]["anchors"]["hivectl/natsw"]["rdr"]) == 1

    info = json.loads(ok("switch", "info", "--json", "natsw"))[0]
    assert info["dhcp"]["running"] and info["dhcp"]["range"] == "10.77.0.64-10.77.0.254"
    assert any("pf is not enabled" in w for w in info["warnings"])
    assert ok("switch", "init", "--dry-run") == "", "a running NAT switch needs nothing at init"

    pid = running_pid(pidfile)
    ok("switch", "destroy", "natsw")
    assert pid is not None and not alive(pid)
    st = freebsd.sim.state()
    assert "hivectl/natsw" not in st["pf"]["anchors"] and "vm-natsw" not in st["interfaces"]
    left = sorted(p.name for p in (freebsd.vm_dir / ".config").iterdir() if not is_journal_file(p))
    assert left == [".system.conf.lock", "null.iso", "system.conf"]  # the lock file of system.conf stays


def test_nat_default_subnet_avoids_host_networks(freebsd: FreeBSD) -> None:
    from hivectl.net.nat import choose_subnet

    expected = choose_subnet("natsw", [])
    freebsd.add_nic("em1", str(expected.ip))  # the host already uses that /24
    ok("switch", "create", "--nat", "natsw")
    address = read_values(freebsd.system_conf)["addr_natsw"]
    assert address != str(expected) and address.startswith("10.") and address.endswith(".1/24")
    assert addrs(freebsd.ifs()["vm-natsw"]) == [address]


def test_switch_commands_need_initialised_vm_dir(freebsd: FreeBSD, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVECTL_VM_DIR", os.fspath(freebsd.vm_dir / "missing"))
    result = cli("switch", "create", "x")
    assert result.status == 1 and "does not exist" in result.err


def test_bridge_creation_failing_half_way_leaves_no_bridge(freebsd: FreeBSD) -> None:
    """ifconfig keeps what it did before a bad parameter; CreateBridge finds that bridge by group and removes it."""
    from hivectl.errors import HivectlError
    from hivectl.host.local import LocalHost
    from hivectl.net.ifactions import CreateBridge, IfName

    target = IfName("<bridge of x>")
    action = CreateBridge(["ifconfig", "bridge", "create", "group", "viid-00000@", "mtu", "99999", "up"], target,
                          "viid-00000@")
    with pytest.raises(HivectlError, match="SIOCSIFMTU"):
        action.apply(LocalHost())
    assert sorted(freebsd.ifs()) == ["em0", "lo0"] and target.value == ""
    good = CreateBridge(["ifconfig", "bridge", "create", "group", "viid-00000@", "up"], target, "viid-00000@")
    good.apply(LocalHost())
    assert target.value == "bridge0" and "viid-00000@" in freebsd.ifs()["bridge0"]["groups"]
    good.undo(LocalHost())
    assert sorted(freebsd.ifs()) == ["em0", "lo0"]
