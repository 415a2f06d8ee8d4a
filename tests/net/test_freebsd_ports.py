"""Guest ports on the simulated FreeBSD host: names decided up front, setup attaches, teardown leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hivectl.context import Context
from hivectl.errors import ConfigError, Conflict, HivectlError
from hivectl.net.ports import Port, plan_ports
from hivectl.plan import Plan
from tests.net.conftest import FreeBSD, cli

GUEST = """\
loader="bhyveload"
cpu="1"
memory="256M"
network0_type="virtio-net"
network0_switch="public"
network0_mac="58:9c:fc:00:00:01"
network1_type="virtio-net"
network1_switch="office"
network1_mac="58:9c:fc:00:00:02"
network2_type="e1000"
network2_switch="lan"
network2_name="weblan"
network2_mac="58:9c:fc:00:00:03"
network3_type="virtio-net"
network3_device="em2"
network3_mac="58:9c:fc:00:00:04"
"""


def write_guest(vm_dir: Path, name: str, text: str) -> None:
    (vm_dir / name).mkdir(exist_ok=True)
    (vm_dir / name / f"{name}.conf").write_text(text)


def ports_for(name: str) -> list[Port]:
    ctx = Context()
    ref = ctx.store.get(name)
    return plan_ports(ctx.host, ctx.store, ref, ref.config(), "freebsd")


def setup(ports: list[Port]) -> None:
    host = Context().host
    for port in ports:
        Plan(list(port.setup)).apply(host)


def teardown(ports: list[Port]) -> None:
    host = Context().host
    for port in ports:
        for action in port.teardown:
            host.run(action.argv())


def ok(*args: str) -> None:
    result = cli(*args)
    assert result.status == 0, result.err


@pytest.fixture
def three_switches(freebsd: FreeBSD) -> FreeBSD:
    """public: standard on em0 with MTU 9000; office: standard, VLAN 20 on em1; lan: manual, private."""
    freebsd.add_nic("em1")
    freebsd.add_nic("em2")
    freebsd.run("ifconfig", "bridge", "create", "up")
    ok("switch", "create", "-i", "em0", "-m", "9000", "public")
    ok("switch", "create", "-i", "em1", "-n", "20", "office")
    ok("switch", "create", "-t", "manual", "-b", "bridge0", "-p", "lan")
    write_guest(freebsd.vm_dir, "web", GUEST)
    return freebsd


def test_ports_on_standard_vlan_and_manual_switches(three_switches: FreeBSD) -> None:
    freebsd = three_switches
    ports = ports_for("web")
    assert [(p.index, p.ifname, p.backend, p.bridge, p.mtu, p.created) for p in ports] == [
        (0, "tap0", "tap0", "vm-public", 9000, True),
        (1, "tap1", "tap1", "vm-office", None, True),
        (2, "weblan", "weblan,type=tap", "bridge0", None, True),
        (3, "em2", "em2", "", None, False),
    ]
    assert [a.argv() for a in ports[0].setup] == [
        ["ifconfig", "tap0", "create"],
        ["ifconfig", "tap0", "description", "vmnet/web/0/public", "group", "vm-port"],
        ["ifconfig", "tap0", "mtu", "9000"],
        ["ifconfig", "vm-public", "addm", "tap0"],
        ["ifconfig", "tap0", "up"],
    ]
    assert [a.argv() for a in ports[2].setup][-2:] == [["ifconfig", "bridge0", "private", "weblan"],
                                                       ["ifconfig", "weblan", "up"]]
    assert [a.argv() for a in ports[0].teardown] == [["ifconfig", "tap0", "destroy"]]
    assert ports[3].teardown == [], "an interface hivectl did not create is never destroyed"
    assert "tap0" not in freebsd.ifs(), "planning changes nothing"

    setup(ports)
    ifs = freebsd.ifs()
    assert freebsd.members("vm-public") == ["em0", "tap0"] and ifs["tap0"]["mtu"] == 9000
    assert ifs["tap0"]["description"] == "vmnet/web/0/public" and ifs["tap0"]["groups"] == ["tap", "vm-port"]
    assert "UP" in ifs["tap0"]["flags"]
    assert freebsd.members("vm-office") == ["em1.20", "tap1"] and ifs["tap1"]["mtu"] == 1500
    assert freebsd.members("bridge0") == ["weblan"]
    assert "PRIVATE" in ifs["bridge0"]["members"][0]["flags"]
    assert ifs["em2"]["description"] == "vmnet/web/3/custom", "device without switch still works (churchers#572)"
    assert not any(m["name"] == "em2" for i in ifs.values() if i["kind"] == "bridge" for m in i["members"])

    info = {d["name"]: d for d in json.loads(cli("switch", "info", "--json").out)}
    assert [(p["device"], p["vm"], p["nic"]) for p in info["public"]["ports"] if p["kind"] == "guest"] == [
        ("tap0", "web", 0)]
    assert [p["vm"] for p in info["lan"]["ports"]] == ["web"]

    teardown(ports)
    ifs = freebsd.ifs()
    assert not [n for n in ifs if n.startswith("tap") or n == "weblan"]
    assert not list((freebsd.sim.root / "dev").glob("tap*"))
    assert freebsd.members("vm-public") == ["em0"] and "em2" in ifs


def test_backends_are_accepted_by_bhyve(three_switches: FreeBSD) -> None:
    """The planned backends open the taps the setup made (and the untyped renamed tap would not)."""
    freebsd = three_switches
    ports = ports_for("web")
    setup(ports)
    argv = ["bhyve", "-c", "1", "-m", "256M", "-AHPw", "-s", "0,hostbridge", "-s", "31,lpc",
            "-l", "bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"]
    for slot, port in zip((5, 6, 7), ports[:3], strict=True):
        argv += ["-s", f"{slot},virtio-net,{port.backend}"]
    proc = freebsd.sim.start([*argv, "web"])
    record = freebsd.sim.wait_running("web", proc)
    assert sorted(record["taps"]) == ["tap0", "tap1", "weblan"]
    freebsd.sim.exit_guest("web", 1)
    assert proc.wait(timeout=10) == 1
    untyped = freebsd.run(*argv[:-6], "-s", "5,virtio-net,weblan", "web2")
    assert untyped.returncode == 4
    teardown(ports)


def test_free_tap_numbers_skip_renamed_taps(three_switches: FreeBSD) -> None:
    """A tap renamed with 'name' keeps its unit: tap0 cannot be created while 'other' holds unit 0."""
    freebsd = three_switches
    assert freebsd.run("ifconfig", "tap", "create", "name", "other").stdout.strip() == "other"
    assert freebsd.run("ifconfig", "tap0", "create").returncode == 1
    ports = ports_for("web")
    assert [p.ifname for p in ports[:2]] == ["tap1", "tap2"]
    setup(ports)
    assert freebsd.members("vm-public") == ["em0", "tap1"]
    teardown(ports)
    assert sorted(n for n in freebsd.ifs() if n.startswith("tap") or n in ("other", "weblan")) == ["other"]


def test_leftover_named_tap_of_the_same_guest_is_replaced(three_switches: FreeBSD) -> None:
    freebsd = three_switches
    freebsd.run("ifconfig", "tap", "create", "name", "weblan", "description", "vmnet/web/2/lan")
    ports = ports_for("web")
    assert [a.argv() for a in ports[2].setup][:2] == [["ifconfig", "weblan", "destroy"],
                                                      ["ifconfig", "tap", "create", "name", "weblan"]]
    setup(ports)
    assert freebsd.members("bridge0") == ["weblan"]
    teardown(ports)
    freebsd.run("ifconfig", "tap", "create", "name", "weblan", "description", "vmnet/db/0/lan")
    with pytest.raises(Conflict, match="not a leftover"):
        ports_for("web")


def test_unknown_switch_is_an_error_naming_file_key_and_value(freebsd: FreeBSD) -> None:
    write_guest(freebsd.vm_dir, "db", 'loader="bhyveload"\nnetwork0_type="virtio-net"\nnetwork0_switch="nosuch"\n')
    with pytest.raises(ConfigError) as caught:
        ports_for("db")
    text = str(caught.value)
    assert "db.conf" in text and "network0_switch='nosuch'" in text and "no such switch" in text


def test_switch_without_bridge_on_this_host(freebsd: FreeBSD) -> None:
    ok("switch", "create", "public")
    freebsd.run("ifconfig", "vm-public", "destroy")
    write_guest(freebsd.vm_dir, "db", 'loader="bhyveload"\nnetwork0_type="virtio-net"\nnetwork0_switch="public"\n')
    with pytest.raises(HivectlError, match="switch init"):
        ports_for("db")


def test_vale_and_netgraph_backends(freebsd: FreeBSD) -> None:
    ok("switch", "create", "-t", "vale", "vl")
    ok("switch", "create", "-t", "netgraph", "ng")
    write_guest(freebsd.vm_dir, "db", "\n".join([
        'loader="bhyveload"',
        'network0_type="virtio-net"', 'network0_switch="vl"', 'network0_mac="58:9c:fc:00:00:07"',
        'network1_type="virtio-net"', 'network1_switch="ng"', 'network1_mac="58:9c:fc:00:00:08"',
        'network2_type="virtio-net"', 'network2_switch="ng"', 'network2_mac="58:9c:fc:00:00:09"', ""]))
    with pytest.raises(HivectlError, match="no netgraph node 'ng:'"):
        ports_for("db")
    with freebsd.sim.edit() as data:
        data.setdefault("net", {}).setdefault("netgraph", {})["ng"] = {"hooks": ["link0", "link1", "link2"]}
    ports = ports_for("db")
    # md5("vl") = 28b3a..., md5("58:9c:fc:00:00:07") = bf40a...
    assert ports[0].backend == "vale28b3a:bf40a" and ports[0].setup == [] and not ports[0].created
    assert [p.backend for p in ports[1:]] == ["netgraph,path=ng:,peerhook=link3", "netgraph,path=ng:,peerhook=link4"]
    before = freebsd.ifs()
    setup(ports)
    assert freebsd.ifs() == before


def test_vale_needs_a_mac(freebsd: FreeBSD) -> None:
    ok("switch", "create", "-t", "vale", "vl")
    write_guest(freebsd.vm_dir, "db", 'loader="bhyveload"\nnetwork0_type="virtio-net"\nnetwork0_switch="vl"\n')
    with pytest.raises(ConfigError, match="network0_mac"):
        ports_for("db")


def test_span_port_and_nic_mtu(freebsd: FreeBSD) -> None:
    ok("switch", "create", "-i", "em0", "public")
    write_guest(freebsd.vm_dir, "mon", "\n".join([
        'loader="bhyveload"',
        'network0_type="virtio-net"', 'network0_switch="public"', 'network0_span="yes"',
        'network1_type="virtio-net"', 'network1_switch="public"', 'network1_mtu="1400"', ""]))
    ports = ports_for("mon")
    assert ["ifconfig", "vm-public", "span", "tap0"] in [a.argv() for a in ports[0].setup]
    assert ports[1].mtu == 1400
    setup(ports)
    ifs = freebsd.ifs()
    assert ifs["vm-public"]["spans"] == ["tap0"] and freebsd.members("vm-public") == ["em0", "tap1"]
    teardown(ports)
    assert freebsd.ifs()["vm-public"]["spans"] == []


def test_start_dry_run_shows_port_setup(three_switches: FreeBSD) -> None:
    """The lifecycle 'start --dry-run' prints the port setup planned here (names real bhyve accepts)."""
    freebsd = three_switches
    write_guest(freebsd.vm_dir, "web", GUEST + 'disk0_type="virtio-blk"\ndisk0_name="disk0.img"\n')
    with open(freebsd.vm_dir / "web" / "disk0.img", "wb") as disk:
        disk.truncate(1 << 30)
    result = cli("start", "--dry-run", "web")
    assert result.status == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert ["ifconfig", "tap0", "create"] in lines and ["ifconfig", "vm-public", "addm", "tap0"] in lines
