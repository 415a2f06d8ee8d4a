"""Pure parts of the switch code: names, the system.conf model and its checks, NAT arithmetic, parsers."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from hivectl.errors import ConfigError, NotFound
from hivectl.net import names
from hivectl.net.ifconfig import parse
from hivectl.net.linux import parse_links
from hivectl.net.nat import choose_subnet, dhcp_range, nft_rules, pf_rules
from hivectl.net.switches import Forward, Switch, SwitchConfig


def test_names_follow_vm_bhyve() -> None:
    # Expected values computed with `printf %s NAME | md5sum` (= FreeBSD `md5 -qs NAME`).
    assert names.viid("public") == "viid-4c918@"
    assert names.freebsd_bridge_name("public") == "vm-public"
    assert names.freebsd_bridge_name("twelve_chars") == "vm-twelve_chars"
    assert names.freebsd_bridge_name("thirteen_char") is None
    assert names.vale_backend("vl", "58:9c:fc:00:00:07") == "vale28b3a:bf40a"
    assert names.netgraph_backend("ng", 3) == "netgraph,path=ng:,peerhook=link3"
    assert names.vxlan_multicast("ov") == "239.186.253.155"
    assert names.tap_description("web", 2, "") == "vmnet/web/2/custom"
    assert names.parse_tap_description("vmnet/web/2/public") == ("web", 2, "public")
    assert names.parse_tap_description("vm/public") is None


def test_linux_names_fit_ifnamsiz_and_stay_distinct() -> None:
    assert names.linux_bridge_name("public") == "vm-public"
    long_a, long_b = names.linux_bridge_name("customers_east"), names.linux_bridge_name("customers_eastern")
    assert len(long_a) <= 15 and len(long_b) <= 15 and long_a != long_b
    assert names.linux_tap_name("web", 0) == "hv0-web"
    taps = {names.linux_tap_name(g, i) for g in ("database-primary-1", "database-primary-2") for i in (0, 1, 12)}
    assert len(taps) == 6 and all(len(t) <= 15 for t in taps)
    assert names.nft_table("nat") == "hivectl_nat"
    assert names.nft_table("a.b") != names.nft_table("a_b")


CONF = """\
# system.conf kept by hand
switch_list="public lan"
type_public="standard"
ports_public="em0"
vlan_public="10"
addr_public="10.0.0.1/24"
addr6_public="fd00::1/64"
mtu_public="9000"
private_public="yes"
type_lan="manual"
bridge_lan="bridge0"
nat_lan="no"
unknown_key="kept"
"""


def test_switch_config_reads_and_writes_in_place(tmp_path: Path) -> None:
    path = tmp_path / "system.conf"
    path.write_text(CONF)
    conf = SwitchConfig.load(path)
    assert conf.names() == ["public", "lan"]
    public = conf.get("public")
    assert public == Switch("public", "standard", ("em0",), 10, ipaddress.IPv4Interface("10.0.0.1/24"),
                            ipaddress.IPv6Interface("fd00::1/64"), 9000, True)
    assert conf.get("lan").bridge == "bridge0" and not conf.get("lan").nat
    conf.add_new(Switch("nat", nat=True, addr=ipaddress.IPv4Interface("10.9.0.1/24"),
                        forwards=(Forward("tcp", 8080, ipaddress.IPv4Address("10.9.0.5"), 80),)))
    conf.remove("lan")
    text = conf.text()
    assert text.startswith("# system.conf kept by hand\nswitch_list=\"public nat\"\n")
    assert 'unknown_key="kept"' in text and "bridge_lan" not in text and "nat_lan" not in text
    assert 'forward_nat="tcp:8080:10.9.0.5:80"' in text and 'nat_nat="yes"' in text
    with pytest.raises(NotFound, match="known switches: public, nat"):
        conf.get("lan")


@pytest.mark.parametrize(("key", "value", "words"), [
    ("vlan_public", "5000", ["vlan_public='5000'", "0 to 4094"]),
    ("mtu_public", "70000", ["mtu_public='70000'"]),
    ("addr_public", "10.0.0.300/24", ["addr_public='10.0.0.300/24'"]),
    ("addr_public", "fd00::1/64", ["addr_public", "addr6_"]),
    ("type_public", "hub", ["type_public='hub'"]),
    ("ports_public", "em0 e;m1", ["ports_public='e;m1'"]),
    ("forward_public", "tcp:80:10.0.0.5", ["forward_public", "proto:hostport"]),
])
def test_bad_values_in_the_file_name_file_key_and_value(tmp_path: Path, key: str, value: str,
                                                         words: list[str]) -> None:
    path = tmp_path / "system.conf"
    path.write_text(f'switch_list="public"\n{key}="{value}"\n')
    with pytest.raises(ConfigError) as caught:
        SwitchConfig.load(path).get("public")
    assert str(path) in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_switch_list_with_a_bad_name(tmp_path: Path) -> None:
    path = tmp_path / "system.conf"
    path.write_text('switch_list="ok ba;d"\n')
    with pytest.raises(ConfigError, match="switch_list='ba;d'"):
        SwitchConfig.load(path).names()


def test_dhcp_range_keeps_the_bridge_address_out() -> None:
    assert dhcp_range(ipaddress.IPv4Interface("10.0.0.1/24")) == (ipaddress.IPv4Address("10.0.0.64"),
                                                                  ipaddress.IPv4Address("10.0.0.254"))
    low, high = dhcp_range(ipaddress.IPv4Interface("10.0.0.200/24"))
    assert (str(low), str(high)) == ("10.0.0.64", "10.0.0.199")
    low, high = dhcp_range(ipaddress.IPv4Interface("192.168.8.254/29"))
    assert ipaddress.IPv4Address("192.168.8.254") not in (low, high) and low <= high
    with pytest.raises(Exception, match="/29"):
        dhcp_range(ipaddress.IPv4Interface("10.0.0.1/30"))


def test_default_nat_subnet_is_stable_and_avoids_taken_networks() -> None:
    first = choose_subnet("natsw", [])
    assert first == choose_subnet("natsw", []) and first.network.prefixlen == 24
    assert first.ip == next(first.network.hosts())
    moved = choose_subnet("natsw", [f"{first.ip}/24", "192.168.1.5/24"])
    assert moved != first and not moved.network.overlaps(first.network)
    with pytest.raises(Exception, match="no free private /24"):
        choose_subnet("natsw", ["10.0.0.1/8"])


def test_rule_texts() -> None:
    sw = Switch("nat", addr=ipaddress.IPv4Interface("10.9.0.1/24"), nat=True,
                forwards=(Forward("udp", 5353, ipaddress.IPv4Address("10.9.0.5"), 53),))
    assert pf_rules(sw, "vm-nat", "em0").splitlines()[1:] == [
        "nat on em0 inet from 10.9.0.0/24 to ! 10.9.0.0/24 -> (em0)",
        "rdr pass on em0 inet proto udp from any to (em0) port 5353 -> 10.9.0.5 port 53",
        "pass quick on vm-nat inet from 10.9.0.0/24 to any keep state"]
    text = nft_rules(sw, "vm-nat")
    assert "table inet hivectl_nat\ndelete table inet hivectl_nat\ntable inet hivectl_nat {" in text
    assert 'iifname != "vm-nat" udp dport 5353 dnat ip to 10.9.0.5:53' in text


# Output of FreeBSD 14.1 `ifconfig -a` on a vm-bhyve host (addresses changed), to keep the parser honest
# about the real format rather than only the simulator's.
FREEBSD_IFCONFIG = """\
em0: flags=1008943<UP,BROADCAST,RUNNING,PROMISC,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=4e504bb<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,JUMBO_MTU,VLAN_HWCSUM,LRO,VLAN_HWFILTER>
\tether 3c:ec:ef:00:11:22
\tinet 192.0.2.10 netmask 0xffffff00 broadcast 192.0.2.255
\tinet6 fe80::3eec:efff:fe00:1122%em0 prefixlen 64 scopeid 0x1
\tmedia: Ethernet autoselect (1000baseT <full-duplex>)
\tstatus: active
\tnd6 options=23<PERFORMNUD,ACCEPT_RTADV,AUTO_LINKLOCAL>
vm-public: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tdescription: vm/public
\tether 58:9c:fc:10:ff:9a
\tinet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255
\tinet6 fd00::1 prefixlen 64
\tid 00:00:00:00:00:00 priority 32768 hellotime 2 fwddelay 15
\tmaxage 20 holdcnt 6 proto rstp maxaddr 2000 timeout 1200
\troot id 00:00:00:00:00:00 priority 32768 ifcost 0 port 0
\tmember: tap0 flags=943<LEARNING,DISCOVER,PRIVATE,AUTOEDGE,AUTOPTP>
\t        port 5 priority 128 path cost 2000000
\tmember: em0 flags=143<LEARNING,DISCOVER,AUTOEDGE,AUTOPTP>
\t        port 1 priority 128 path cost 20000
\tgroups: bridge vm-switch viid-4c918@
\tnd6 options=9<PERFORMNUD,IFDISABLED>
tap0: flags=1008943<UP,BROADCAST,RUNNING,PROMISC,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\tdescription: vmnet/web/0/public
\toptions=80000<LINKSTATE>
\tether 58:9c:fc:10:2e:01
\tgroups: tap vm-port
\tmedia: Ethernet 1000baseT <full-duplex>
\tstatus: active
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
\tOpened by PID 4242
"""


def test_ifconfig_parser_reads_real_freebsd_output() -> None:
    blocks = {b.name: b for b in parse(FREEBSD_IFCONFIG)}
    assert list(blocks) == ["em0", "vm-public", "tap0"]
    bridge = blocks["vm-public"]
    assert bridge.is_bridge and bridge.up and bridge.mtu == 1500 and bridge.description == "vm/public"
    assert bridge.inet == [ipaddress.IPv4Interface("10.0.0.1/24")]
    assert bridge.inet6 == [ipaddress.IPv6Interface("fd00::1/64")]
    assert bridge.members == {"tap0": frozenset({"LEARNING", "DISCOVER", "PRIVATE", "AUTOEDGE", "AUTOPTP"}),
                              "em0": frozenset({"LEARNING", "DISCOVER", "AUTOEDGE", "AUTOPTP"})}
    assert blocks["em0"].routable() == [ipaddress.IPv4Interface("192.0.2.10/24")], "link-local is not routable"
    assert names.parse_tap_description(blocks["tap0"].description) == ("web", 0, "public")


def test_ip_json_parser() -> None:
    text = ('[{"ifname":"vm-public","flags":["BROADCAST","MULTICAST","UP"],"mtu":9000,"ifalias":"vm/public",'
            '"linkinfo":{"info_kind":"bridge"},"addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24}]},'
            '{"ifname":"hv0-web","flags":["UP"],"mtu":9000,"master":"vm-public","ifalias":"vmnet/web/0/public",'
            '"linkinfo":{"info_kind":"tun","info_slave_kind":"bridge","info_slave_data":{"isolated":true}}}]')
    links = parse_links(text)
    assert links["vm-public"].kind == "bridge" and links["vm-public"].addresses == [
        ipaddress.IPv4Interface("10.0.0.1/24")]
    tap = links["hv0-web"]
    assert (tap.master, tap.isolated, tap.up, tap.mtu) == ("vm-public", True, True, 9000)
