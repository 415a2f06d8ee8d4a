"""ifconfig, sysctl, kld*, pciconf and truncate keep state and refuse what FreeBSD refuses (their manual pages)."""

from __future__ import annotations

import os

from tests.simhost.fixture import SimHost


def test_bridge_lifecycle(simhost: SimHost) -> None:
    run = simhost.run
    call = simhost.call  # in-process, for the refusals
    assert run(["ifconfig", "bridge", "create"]).stdout == "bridge0\n"
    assert run(["ifconfig", "bridge", "create", "name", "vm-public", "group", "vm-switch", "up"]).stdout == \
        "vm-public\n"
    assert run(["ifconfig", "bridge7", "create"]).stdout == ""
    assert run(["ifconfig", "tap", "create"]).stdout == "tap0\n"
    assert run(["ifconfig", "tap", "create", "name", "web1"]).stdout == "web1\n"
    assert run(["ifconfig", "tap0", "descr", "vmnet/vm1/0/public", "group", "vm-port", "up"]).returncode == 0
    assert run(["ifconfig", "vm-public", "addm", "tap0", "addm", "web1", "private", "web1"]).returncode == 0
    dup = call(["ifconfig", "vm-public", "addm", "tap0"])
    assert (dup.returncode, dup.stderr) == (1, "ifconfig: BRDGADD tap0: File exists\n")
    other = call(["ifconfig", "bridge0", "addm", "tap0"])
    assert (other.returncode, other.stderr) == (1, "ifconfig: BRDGADD tap0: Device busy\n")
    digit = call(["ifconfig", "bridge0", "group", "vm1"])
    assert (digit.returncode, digit.stderr) == (
        1, "ifconfig: setifgroup: group names may not end in a digit\n")
    missing = call(["ifconfig", "tap9", "up"])
    assert (missing.returncode, missing.stderr) == (1, "ifconfig: interface tap9 does not exist\n")
    exists = call(["ifconfig", "bridge0", "create"])
    assert (exists.returncode, exists.stderr) == (1, "ifconfig: SIOCIFCREATE2: File exists\n")
    assert run(["ifconfig", "vm-public", "inet", "10.0.0.1/24", "mtu", "9000"]).returncode == 0
    show = run(["ifconfig", "vm-public"]).stdout.splitlines()
    assert show[0] == "vm-public: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 9000"
    assert "\tinet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255" in show
    assert "\tmember: web1 flags=943<LEARNING,DISCOVER,AUTOEDGE,AUTOPTP,PRIVATE>" in show
    assert "\tmember: tap0 flags=143<LEARNING,DISCOVER,AUTOEDGE,AUTOPTP>" in show
    assert "\tgroups: bridge vm-switch" in show
    assert simhost.interfaces()["tap0"]["mtu"] == 9000  # members follow the bridge MTU
    tap = run(["ifconfig", "tap0"]).stdout.splitlines()
    assert tap[1] == "\tdescription: vmnet/vm1/0/public"
    assert run(["ifconfig", "-l"]).stdout == "em0 lo0 bridge0 vm-public bridge7 tap0 web1\n"
    assert call(["ifconfig", "-g", "vm-switch"]).stdout == "vm-public\n"
    assert run(["ifconfig", "vm-public", "deletem", "web1"]).returncode == 0
    assert run(["ifconfig", "tap0", "destroy"]).returncode == 0
    assert simhost.interfaces()["vm-public"]["members"] == []
    assert run(["ifconfig", "bridge", "create"]).stdout == "bridge2\n"  # the renamed vm-public keeps unit 1
    assert run(["ifconfig", "vm-public", "destroy"]).returncode == 0
    assert run(["ifconfig", "bridge", "create"]).stdout == "bridge1\n"
    assert call(["ifconfig", "em0", "destroy"]).stderr == "ifconfig: SIOCIFDESTROY: Invalid argument\n"
    vlan = run(["ifconfig", "vlan", "create", "vlandev", "em0", "vlan", "5", "name", "em0.5",
                "descr", "vm-vlan/public/em0.5", "group", "vm-vlan", "up"])
    assert (vlan.returncode, vlan.stdout) == (0, "em0.5\n")
    bad_mtu = call(["ifconfig", "bridge0", "mtu", "70"])
    assert bad_mtu.stderr == "ifconfig: ioctl SIOCSIFMTU (set mtu): Invalid argument\n"
    assert call(["ifconfig", "bridge0", "mtu"]).stderr == "ifconfig: 'mtu' requires argument\n"


def test_sysctl_and_modules(simhost: SimHost) -> None:
    run = simhost.run
    assert run(["sysctl", "-n", "hw.vmm.maxcpu"]).stdout == "4\n"
    assert run(["sysctl", "hw.vmm.vmx.cap.unrestricted_guest"]).stdout == \
        "hw.vmm.vmx.cap.unrestricted_guest: 1\n"
    assert run(["sysctl", "net.link.tap.up_on_open=1"]).stdout == "net.link.tap.up_on_open: 0 -> 1\n"
    assert simhost.state()["sysctl"]["net.link.tap.up_on_open"] == "1"
    ro = simhost.call(["sysctl", "hw.ncpu=8"])
    assert (ro.returncode, ro.stderr) == (1, "sysctl: oid 'hw.ncpu' is read only\n")
    unknown = simhost.call(["sysctl", "-n", "hw.vmm.nope"])
    assert (unknown.returncode, unknown.stderr) == (1, "sysctl: unknown oid 'hw.vmm.nope'\n")
    assert run(["kldstat", "-q", "-m", "vmm"]).returncode == 0
    assert run(["kldstat", "-qm", "if_tap"]).returncode == 0  # if_tuntap.ko also provides if_tap
    assert run(["kldstat", "-q", "-m", "if_vxlan"]).returncode == 1
    again = simhost.call(["kldload", "vmm"])
    assert (again.returncode, again.stderr) == (
        1, "kldload: can't load vmm: module already loaded or in kernel\n")
    assert run(["kldload", "-n", "vmm", "if_vxlan"]).returncode == 0
    assert run(["kldstat", "-q", "-m", "if_vxlan"]).returncode == 0
    listing = run(["kldstat"]).stdout.splitlines()
    assert listing[0].split() == ["Id", "Refs", "Address", "Size", "Name"]
    assert listing[1].split()[-1] == "kernel" and any(line.endswith(" vmm.ko") for line in listing)
    assert run(["kldunload", "vmm"]).returncode == 0
    gone = run(["sysctl", "-n", "hw.vmm.maxcpu"])
    assert (gone.returncode, gone.stderr) == (1, "sysctl: unknown oid 'hw.vmm.maxcpu'\n")
    result = run(["bhyve", "-l", "bootrom,/usr/local/share/uefi-firmware/BHYVE_UEFI.fd", "vm"])
    assert (result.returncode, result.stderr) == (4, "vm_create: No such file or directory\n")


def test_pciconf_and_truncate(simhost: SimHost, tmp_path) -> None:
    listing = simhost.run(["pciconf", "-l"]).stdout.splitlines()
    assert "ppt0@pci0:2:0:0:\tclass=0x020000 rev=0x01 hdr=0x00 vendor=0x8086 device=0x10fb " \
           "subvendor=0x8086 subdevice=0x0003" in listing
    verbose = simhost.run(["pciconf", "-lv", "ppt0"]).stdout.splitlines()
    assert verbose[1] == "    vendor     = 'Intel Corporation'"
    image = tmp_path / "disk0.img"
    assert simhost.run(["truncate", "-s", "20G", str(image)]).returncode == 0
    assert image.stat().st_size == 20 << 30 and image.stat().st_blocks == 0
    assert simhost.run(["truncate", "-s", "+1G", str(image)]).returncode == 0
    assert image.stat().st_size == 21 << 30
    bad = simhost.run(["truncate", "-s", "20GiB", str(image)])
    assert (bad.returncode, bad.stderr) == (1, "truncate: invalid size argument `20GiB'\n")
    assert simhost.run(["truncate", "20G", str(image)]).stderr.startswith("usage: truncate")
    assert simhost.run(["truncate", "-c", "-s", "1G", str(tmp_path / "none")]).returncode == 0
    assert not os.path.exists(tmp_path / "none")
