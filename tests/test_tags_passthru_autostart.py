"""``tags``, ``passthru`` and ``autostart``: real config files, the simulated host's pciconf, a fake sysfs
tree, and rc.conf files checked by ``sh`` itself."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hivectl.cli.main import main
from hivectl.errors import ConfigError
from hivectl.ops.passthru import parse_pciconf
from hivectl.rcfile import read_values
from tests.cli_helpers import hivectl, tree


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real command line in this process (fast); returns status, stdout, stderr."""
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hivectl: "), err
    return lines[0]


def sh_value(path: Path, variable: str) -> str:
    """What sh itself gets for ``variable`` when it sources ``path`` (as rc does at boot)."""
    done = subprocess.run(["sh", "-c", f'. "$1" && printf %s "${{{variable}}}"', "sh", str(path)],
                          capture_output=True, text=True, check=True)
    return done.stdout


# -- tags -------------------------------------------------------------------------------------------------
def test_tags_add_list_find_remove(vmdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("db", "web", "web2"):
        assert run(capsys, "create", name)[0] == 0
    conf = vmdir / "web" / "web.conf"
    conf.write_text(conf.read_text() + "# kept: a comment\nunknown_key=\"x\"\n")
    assert run(capsys, "tags", "add", "web", "prod", "eu") == (0, "", "")
    assert run(capsys, "tags", "add", "db", "prod")[0] == 0
    assert run(capsys, "tags", "add", "web2", "prod-eu")[0] == 0
    text = conf.read_text()
    assert text.endswith('# kept: a comment\nunknown_key="x"\ntags="prod eu"\n')
    assert run(capsys, "tags", "list", "web") == (0, "prod eu\n", "")
    assert json.loads(run(capsys, "tags", "list", "--json", "web")[1]) == ["prod", "eu"]
    # whole tags only: vm-bhyve's grep -w would also find web2's "prod-eu"
    assert run(capsys, "tags", "find", "prod") == (0, "db web\n", "")
    rows = json.loads(run(capsys, "tags", "find", "--json", "prod")[1])
    assert [(r["name"], r["datastore"], r["tags"]) for r in rows] == [("db", "default", ["prod"]),
                                                                      ("web", "default", ["prod", "eu"])]
    assert [r["name"] for r in json.loads(run(capsys, "list", "--json", "-t", "prod")[1])] == ["db", "web"]
    assert run(capsys, "tags", "find", "nosuch") == (0, "", "")

    # adding a tag the guest has changes nothing (the file is not even rewritten) and says so
    before = conf.stat()
    status, out, err = run(capsys, "tags", "add", "web", "prod")
    assert (status, out) == (0, "") and "web already has prod" in err
    assert conf.stat().st_ino == before.st_ino and conf.read_text() == text

    # dry run: the sysrc command with the resulting value, nothing written
    snapshot = tree(vmdir)
    status, out, _ = run(capsys, "tags", "add", "--dry-run", "web", "fast", "eu")
    assert status == 0
    assert [json.loads(line) for line in out.splitlines()] == [["sysrc", "-f", str(conf), "tags=prod eu fast"]]
    assert tree(vmdir) == snapshot

    status, _, err = run(capsys, "tags", "remove", "web", "eu", "nope")
    assert status == 0 and "web has no tag nope" in err
    assert read_values(conf)["tags"] == "prod" and "# kept: a comment\n" in conf.read_text()
    assert run(capsys, "tags", "remove", "web", "prod")[0] == 0
    assert read_values(conf)["tags"] == "" and run(capsys, "tags", "list", "web") == (0, "", "")
    assert run(capsys, "tags", "find", "prod")[1] == "db\n"


def test_tags_written_by_hand_or_vm_bhyve(vmdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "create", "g")[0] == 0
    conf = vmdir / "g" / "g.conf"
    legacy = "x" * 70  # vm-bhyve allows longer names than hivectl; such a tag must stay removable
    lines = conf.read_text().splitlines()
    conf.write_text("\n".join([lines[0], f'tags="old {legacy}"   # set by vm-bhyve', *lines[1:]]) + "\n")
    assert run(capsys, "tags", "find", "old")[1] == "g\n"
    assert run(capsys, "tags", "remove", "g", legacy)[0] == 0
    assert run(capsys, "tags", "add", "g", "new")[0] == 0
    new_lines = conf.read_text().splitlines()
    assert new_lines[1] == 'tags="old new"' and new_lines[0] == lines[0] and new_lines[2:] == lines[1:]


@pytest.mark.parametrize(("args", "status", "words"), [
    (("tags", "add", "g", "bad tag"), 1, ["tag='bad tag'"]),
    (("tags", "add", "g", "../x"), 1, ["tag='../x'"]),
    (("tags", "add", "g", "-"), 1, ["tag='-'"]),
    (("tags", "find", "a;b"), 1, ["tag='a;b'"]),
    (("tags", "remove", "g", "two words"), 1, ["tag='two words'"]),
    (("tags", "add", "missing", "t"), 1, ["missing"]),
    (("tags", "list", "../etc"), 1, ["name='../etc'"]),
    (("tags", "add", "g"), 2, ["TAG"]),
    (("tags",), 2, []),
    (("tags", "frob", "g"), 2, ["frob"]),
])
def test_tags_bad_input(vmdir: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], status: int,
                        words: list[str]) -> None:
    assert run(capsys, "create", "g")[0] == 0
    before = tree(vmdir)
    got, out, err = run(capsys, *args)
    line = one_line_error(err)
    assert got == status and out == ""
    for word in words:
        assert word in line
    assert tree(vmdir) == before


def test_tags_through_the_installed_entry_point(vmdir: Path) -> None:
    assert hivectl("create", "g").status == 0
    assert hivectl("tags", "add", "g", "prod").status == 0
    assert hivectl("tags", "find", "prod").out == "g\n"
    result = hivectl("tags", "add", "g", "no/slash")
    assert result.status == 1 and "command line: tag='no/slash'" in result.err
    assert "examples:" in hivectl("help", "tags").out


# -- passthru: FreeBSD (the simulated host's pciconf) -------------------------------------------------------
def count_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: str) -> Path:
    """Put a wrapper for ``program`` first on PATH that logs each run, then runs the real one."""
    real = shutil.which(program)
    assert real is not None
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir(exist_ok=True)
    log = tmp_path / f"{program}.calls"
    script = wrappers / program
    script.write_text(f"#!{sys.executable}\nimport os, sys\n"
                      f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                      f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
    return log


def test_passthru_on_freebsd_reads_pciconf_once(simhost: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)  # listing devices needs no vm_dir
    monkeypatch.setenv("HIVECTL_RC_CONF", str(tmp_path / "absent.conf"))
    for unit in range(1, 13):  # a quad-port card and more: vm-bhyve would run pciconf once per device
        simhost.add_pci_device("ppt" if unit % 2 else "igb", unit, 4 + unit // 8, unit % 8 // 2, unit % 2)
    simhost.add_pci_device("ppt", 40, 1, 0, 0, domain=1, vendor=0x15B3, device=0x1017,
                           vendor_name="Mellanox Technologies", device_name="MT27800 Family [ConnectX-5]")
    log = count_calls(tmp_path, monkeypatch, "pciconf")

    status, out, err = run(capsys, "passthru")
    assert (status, err) == (0, "")
    assert log.read_text() == "-lv\n", "one pciconf run for all devices"
    lines = out.splitlines()
    assert lines[0].split() == ["DEVICE", "BHYVE", "ID", "READY", "DESCRIPTION"]
    rows = {line.split()[0]: line.split(None, 4) for line in lines[1:]}
    assert rows["ppt0"] == ["ppt0", "2/0/0", "8086:10fb", "Yes", "82599ES 10-Gigabit SFI/SFP+ Network Connection"]
    assert rows["em0"] == ["em0", "0/31/6", "8086:15bc", "No", "Ethernet Connection (7) I219-V"]
    assert rows["none0"][1:4] == ["3/0/0", "1912:0014", "No"]
    assert rows["ppt1"][1:4] == ["4/0/1", "8086:1521", "Yes"] and rows["igb2"][1:4] == ["4/1/0", "8086:1521", "No"]
    assert rows["ppt40"][1:4] == ["-", "15b3:1017", "No"], "bhyve cannot use a device outside domain 0"
    assert len(rows) == 5 + 12 + 1

    data = json.loads(run(capsys, "passthru", "--json")[1])
    ppt0 = next(d for d in data if d["device"] == "ppt0")
    assert ppt0 == {"device": "ppt0", "driver": "ppt", "address": "0:2:0:0", "bhyve": "2/0/0", "id": "8086:10fb",
                    "vendor_id": "8086", "device_id": "10fb", "ready": True,
                    "description": "82599ES 10-Gigabit SFI/SFP+ Network Connection",
                    "vendor": "Intel Corporation", "class": "network", "iommu_group": None}
    # the BHYVE column is exactly what a passthruN key takes: the bhyve driver accepts it
    ready = [d["bhyve"] for d in data if d["ready"]]
    assert "2/0/0" in ready and len(ready) == 1 + 6


def test_passthru_fails_in_one_line_when_pciconf_fails(simhost: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pciconf").write_text("#!/bin/sh\necho 'pciconf: /dev/pci: Permission denied' >&2\nexit 1\n")
    (broken / "pciconf").chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}{os.pathsep}{os.environ['PATH']}")
    status, out, err = run(capsys, "passthru")
    assert status == 1 and out == ""
    assert "pciconf -lv: pciconf: /dev/pci: Permission denied" in one_line_error(err)


def test_parse_pciconf_older_releases_and_odd_lines() -> None:
    text = ("hostb0@pci0:0:0:0:\tclass=0x060000 card=0x08691028 chip=0x3e308086 rev=0x07 hdr=0x00\n"
            "    vendor     = 'Intel Corporation'\n"
            "    device     = 'Host Bridge'\n"
            "    class      = bridge\n"
            "    subclass   = HOST-PCI\n"
            "    bar   [10] = type Memory, range 64, base 0xf0000000, size 16384, enabled\n"
            "ppt12@pci0:130:31:7:\tclass=0x0c0330 rev=0x02 hdr=0x00 vendor=0x1912 device=0x0014 "
            "subvendor=0x1912 subdevice=0x0014\n")
    first, second = parse_pciconf(text)
    assert (first.device, first.pci_id, first.description, first.class_name, first.ready) == (
        "hostb0", "8086:3e30", "Host Bridge", "bridge", False)
    assert (second.device, second.bhyve, second.pci_id, second.ready, second.description, second.class_name) == (
        "ppt12", "130/31/7", "1912:0014", True, "", "serial bus")


# -- passthru: Linux (a sysfs tree) -------------------------------------------------------------------------
def fake_sysfs(root: Path) -> None:
    """Four devices: one bound to vfio-pci (ready), one to a NIC driver, one unbound, one in domain 1."""
    devices = root / "sys/bus/pci/devices"
    drivers = root / "sys/bus/pci/drivers"
    groups = root / "sys/kernel/iommu_groups"
    for address, vendor, device, pci_class, driver, group in [
        ("0000:00:00.0", "0x8086", "0x3e30", "0x060000", None, "0"),
        ("0000:01:00.0", "0x10de", "0x1e04", "0x030000", "vfio-pci", "14"),
        ("0000:03:00.1", "0x8086", "0x1521", "0x020000", "igb", "15"),
        ("0001:00:02.0", "0x1af4", "0x1041", "0x020000", "vfio-pci", None),
    ]:
        where = devices / address
        where.mkdir(parents=True)
        for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
            (where / name).write_text(value + "\n")
        if driver:
            (drivers / driver).mkdir(parents=True, exist_ok=True)
            (where / "driver").symlink_to(drivers / driver)
        if group:
            (groups / group).mkdir(parents=True, exist_ok=True)
            (where / "iommu_group").symlink_to(groups / group)
    (devices / "not-a-device").mkdir()
    ids = root / "usr/share/misc/pci.ids"
    ids.parent.mkdir(parents=True)
    ids.write_text("# pci.ids sample\n"
                   "10de  NVIDIA Corporation\n"
                   "\t1e04  TU102 [GeForce RTX 2080 Ti]\n"
                   "\t\t10de 12a4  a subsystem line\n"
                   "8086  Intel Corporation\n"
                   "\t1521  I350 Gigabit Network Connection\n"
                   "C 03  Display controller\n"
                   "\t00  VGA compatible controller\n")


def test_passthru_on_linux_reads_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "host"
    fake_sysfs(root)
    monkeypatch.setenv("HIVECTL_PLATFORM", "linux")
    monkeypatch.setenv("HIVECTL_HOST_ROOT", str(root))
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)
    monkeypatch.setenv("HIVECTL_RC_CONF", str(tmp_path / "absent.conf"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))  # no process may be needed: sysfs is read directly

    status, out, err = run(capsys, "passthru")
    assert (status, err) == (0, "")
    lines = [line.split(None, 5) for line in out.splitlines()]
    assert lines == [
        ["DEVICE", "DRIVER", "BHYVE", "ID", "READY", "DESCRIPTION"],
        ["0000:00:00.0", "-", "0/0/0", "8086:3e30", "No", "bridge"],
        ["0000:01:00.0", "vfio-pci", "1/0/0", "10de:1e04", "Yes", "TU102 [GeForce RTX 2080 Ti]"],
        ["0000:03:00.1", "igb", "3/0/1", "8086:1521", "No", "I350 Gigabit Network Connection"],
        ["0001:00:02.0", "vfio-pci", "-", "1af4:1041", "No", "network"],
    ]
    data = json.loads(run(capsys, "passthru", "--json")[1])
    gpu = data[1]
    assert (gpu["driver"], gpu["ready"], gpu["iommu_group"], gpu["vendor"], gpu["class"]) == (
        "vfio-pci", True, "14", "NVIDIA Corporation", "display")
    assert data[0]["driver"] is None and data[3]["iommu_group"] is None


# -- autostart --------------------------------------------------------------------------------------------
@pytest.fixture
def guests(vmdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Guests a, b, c, db, web in the scratch vm_dir; returns the settings file (HIVECTL_RC_CONF)."""
    for name in ("a", "b", "c", "db", "web"):
        assert main(["create", name]) == 0
    capsys.readouterr()
    return Path(os.environ["HIVECTL_RC_CONF"])


HEADER = '# rc.conf of a FreeBSD host\nhostname="h1"\nifconfig_em0="DHCP"  # uplink\n'
FOOTER = 'vm_delay="7"\n# the end\n'


@pytest.mark.parametrize(("line", "expected"), [
    ('vm_list="a b"', 'vm_list="a b c"'),
    ("vm_list='a b'", 'vm_list="a b c"'),
    ("vm_list=a", 'vm_list="a c"'),
    ('vm_list=""', 'vm_list="c"'),
    ("vm_list=", 'vm_list="c"'),
    ('  vm_list="a  b"    # boot order, see wiki', '  vm_list="a b c"    # boot order, see wiki'),
    ("vm_list='a' #note", 'vm_list="a c" #note'),
    ('vm_list="a\tb"', 'vm_list="a b c"'),
])
def test_autostart_add_rewrites_the_one_line(guests: Path, capsys: pytest.CaptureFixture[str], line: str,
                                             expected: str) -> None:
    guests.write_text(HEADER + line + "\n" + '# vm_list="old list, commented out"\nvm_listing="x"\n' + FOOTER)
    guests.chmod(0o600)
    assert run(capsys, "autostart", "add", "c") == (0, "", "")
    text = guests.read_text()
    assert text == HEADER + expected + "\n" + '# vm_list="old list, commented out"\nvm_listing="x"\n' + FOOTER
    assert stat.S_IMODE(guests.stat().st_mode) == 0o600, "the file keeps its mode"
    words = expected.split('"')[1].split()
    assert sh_value(guests, "vm_list").split() == words and sh_value(guests, "vm_delay") == "7"
    assert [e["name"] for e in json.loads(run(capsys, "autostart", "list", "--json")[1])["guests"]] == words


@pytest.mark.parametrize("content", [None, "", 'vm_delay="3"', 'vm_delay="3"\n', 'vm_delay="3"\r\n'])
def test_autostart_add_appends_when_unset(guests: Path, capsys: pytest.CaptureFixture[str],
                                          content: str | None) -> None:
    if content is None:
        guests.unlink()
    else:
        guests.write_bytes(content.encode())
    assert run(capsys, "autostart", "add", "web", "db")[0] == 0
    text = guests.read_bytes().decode()
    base = "" if content is None else content if content.endswith("\n") or not content else content + "\n"
    assert text == base + 'vm_list="web db"\n'
    assert sh_value(guests, "vm_list") == "web db"


def test_autostart_crlf_line_keeps_its_ending(guests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    guests.write_bytes(b'a_setting="1"\r\nvm_list="a"\r\nvm_delay="3"\r\n')
    assert run(capsys, "autostart", "add", "b")[0] == 0
    assert guests.read_bytes() == b'a_setting="1"\r\nvm_list="a b"\r\nvm_delay="3"\r\n'


def test_autostart_order_move_remove_and_list(guests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    guests.write_text('vm_list="a b"\nvm_delay="4"\n')
    assert run(capsys, "autostart", "add", "--position", "1", "web")[0] == 0
    assert sh_value(guests, "vm_list") == "web a b"
    assert run(capsys, "autostart", "add", "--position", "3", "web", "c")[0] == 0, "move web, insert c"
    assert sh_value(guests, "vm_list") == "a b web c"
    status, _, err = run(capsys, "autostart", "add", "a")
    assert status == 0 and "a already in vm_list" in err and sh_value(guests, "vm_list") == "a b web c"
    assert run(capsys, "autostart", "add", "--position", "5", "db")[0] == 0, "N = length + 1 appends"
    assert sh_value(guests, "vm_list") == "a b web c db"

    # the list startall uses: AUTO in 'list' agrees, entries that are not guests show as missing
    guests.write_text('vm_list="db gone web db"\nvm_delay="4"\n')
    (Path(os.environ["HIVECTL_VM_DIR"]) / "web" / "run.lock").write_text("otherhost\n")
    status, out, _ = run(capsys, "autostart", "list")
    assert status == 0
    assert [line.split() for line in out.splitlines()] == [
        ["ORDER", "NAME", "DATASTORE", "STATE"],
        ["1", "db", "default", "Stopped"],
        ["2", "gone", "-", "missing"],
        ["3", "web", "default", "Locked", "(otherhost)"],
        ["4", "db", "default", "Stopped"],
        ["vm_delay:", "4", "seconds", "between", "starts", "(vm_list", "is", "kept", "in", f"{guests})"],
    ]
    listing = {r["name"]: r["auto_order"] for r in json.loads(run(capsys, "list", "--json")[1])}
    assert listing["web"] == 3 and listing["db"] == 4 and listing["a"] is None

    # remove takes every occurrence, and stale entries (no such guest any more) too
    assert run(capsys, "autostart", "remove", "db", "gone")[0] == 0
    assert guests.read_text() == 'vm_list="web"\nvm_delay="4"\n'
    status, _, err = run(capsys, "autostart", "remove", "db")
    assert status == 0 and "db not in vm_list" in err
    assert run(capsys, "autostart", "remove", "web")[0] == 0
    assert guests.read_text() == 'vm_list=""\nvm_delay="4"\n'
    assert json.loads(run(capsys, "autostart", "list", "--json")[1]) == {
        "file": str(guests), "vm_delay": 4, "guests": []}


def test_autostart_dry_run_and_symlinked_file(guests: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "managed" / "rc.conf"
    real.parent.mkdir()
    real.write_text('vm_list="a"  # keep\n')
    guests.unlink()
    guests.symlink_to(real)
    status, out, _ = run(capsys, "autostart", "add", "--dry-run", "--position", "1", "b")
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == [
        ["sysrc", "-f", str(guests), "vm_list=b a"]]
    assert real.read_text() == 'vm_list="a"  # keep\n'
    assert run(capsys, "autostart", "add", "b")[0] == 0
    assert guests.is_symlink() and real.read_text() == 'vm_list="a b"  # keep\n'


REFUSED = [
    ('vm_list="a"\nvm_list="b"\n', "line 2", 'assigned 2 times (lines 1, 2)'),
    ('vm_list="a"\nvm_list="$vm_list b"\n', "line 2", "assigned 2 times"),
    ('vm_list="${vm_list} b"\n', "line 1", "built from other values"),
    ("vm_list=$other\n", "line 1", "built from other values"),
    ('vm_list="`cat /etc/vms`"\n', "line 1", "built from other values"),
    ('vm_list+=" b"\n', "line 1", "'+='"),
    ('vm_list="a"; vm_delay=3\n', "line 1", "not one plain word"),
    ("vm_list=a b\n", "line 1", "not one plain word"),
    ('vm_list="a"\'b\'\n', "line 1", "not one plain word"),
    ('vm_list="a\nb"\n', "line 1", "spans several lines"),
    ('export vm_list="a"\n', "line 1", "not a plain assignment"),
    (': ${vm_list:="a"}\n', "line 1", "not a plain assignment"),
    ('x="1"\nvm_list="a\n', "line 2", "never closed"),
]


@pytest.mark.parametrize(("content", "where", "why"), REFUSED)
def test_autostart_refuses_to_guess(guests: Path, capsys: pytest.CaptureFixture[str], content: str, where: str,
                                    why: str) -> None:
    guests.write_text(content)
    before = guests.stat()
    for args in (("add", "c"), ("remove", "a"), ("add", "--dry-run", "c")):
        status, out, err = run(capsys, "autostart", *args)
        line = one_line_error(err)
        assert status == 1 and out == ""
        assert f"{guests} {where}: " in line and why in line
        assert "vm_list=" in line or "quote=" in line
    after = guests.stat()
    assert guests.read_text() == content and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_autostart_bad_input(guests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    guests.write_text('vm_list="a"\n')
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("autostart", "add", "nosuch"), 1, "guest nosuch does not exist"),
        (("autostart", "add", "../a"), 1, "name='../a'"),
        (("autostart", "add", "--position", "0", "b"), 1, "--position='0'"),
        (("autostart", "add", "--position", "3", "b"), 1, "--position='3': expected a whole number from 1 to 2"),
        (("autostart", "add", "--position", "x", "b"), 1, "--position='x'"),
        (("autostart", "remove", "a b"), 1, "name='a b'"),
        (("autostart", "add"), 2, "NAME"),
        (("autostart",), 2, "list|add|remove"),
        (("autostart", "list", "extra"), 2, "extra"),
    ]
    for args, status, text in cases:
        got, out, err = run(capsys, *args)
        assert (got, out) == (status, ""), args
        assert text in one_line_error(err), args
    assert guests.read_text() == 'vm_list="a"\n'


def test_autostart_refuses_an_entry_that_double_quotes_would_change(guests: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    guests.write_text("vm_list='a $b'\n")
    status, _, err = run(capsys, "autostart", "add", "c")
    assert status == 1 and "vm_list='$b'" in one_line_error(err)
    assert guests.read_text() == "vm_list='a $b'\n"


def test_autostart_edits_the_file_whose_vm_list_wins(guests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """FreeBSD reads /etc/rc.conf.local and /etc/rc.conf.d/vm after /etc/rc.conf: the last file that sets
    vm_list is the one that wins, so it is the one edited (sysrc(8) does the same); a file that only
    mentions it in a comment does not count."""
    local = tmp_path / "rc.conf.local"
    service = tmp_path / "rc.conf.d" / "vm"
    service.parent.mkdir()
    monkeypatch.setenv("HIVECTL_RC_CONF", f"{guests}:{local}:{service}")
    local.write_text('# local\nvm_list="b"\n')
    guests.write_text('vm_list="a"\n')
    assert run(capsys, "autostart", "add", "c")[0] == 0
    assert (guests.read_text(), local.read_text()) == ('vm_list="a"\n', '# local\nvm_list="b c"\n')
    service.write_text('vm_delay="3"\nvm_list="db"\n')
    status, out, _ = run(capsys, "autostart", "list")
    assert status == 0 and f"vm_list is kept in {service}" in out and "vm_delay: 3 seconds" in out
    assert run(capsys, "autostart", "add", "web")[0] == 0
    assert service.read_text() == 'vm_delay="3"\nvm_list="db web"\n' and local.read_text().endswith('"b c"\n')
    service.write_text("# vm_list=\"x\" (commented out)\n")
    local.write_text('sendmail_enable="NONE"\n')
    assert run(capsys, "autostart", "add", "b")[0] == 0
    assert guests.read_text() == 'vm_list="a b"\n'


def test_autostart_never_overwrites_a_concurrent_edit(guests: Path) -> None:
    """A plan made before the file changed is redone on the file as it is: both edits survive."""
    from hivectl.context import Context
    from hivectl.ops import autostart

    guests.write_text('vm_list="a"\n')
    ctx = Context()
    plan, _ = autostart.plan_add(ctx.store, ["b"])
    guests.write_text('vm_list="a c"\nvm_delay="9"  # added by the administrator meanwhile\n')
    plan.apply(ctx.host)
    assert guests.read_text() == 'vm_list="a c b"\nvm_delay="9"  # added by the administrator meanwhile\n'
    plan, _ = autostart.plan_remove(["a"])
    guests.write_text('vm_list="a"\nvm_list="$x"\n')  # made unreadable meanwhile: refused when applied
    with pytest.raises(ConfigError, match="assigned 2 times"):
        plan.apply(ctx.host)
    assert guests.read_text() == 'vm_list="a"\nvm_list="$x"\n'


def test_autostart_through_the_installed_entry_point(guests: Path) -> None:
    guests.write_text('vm_list="db"\n')
    assert hivectl("autostart", "add", "--position", "1", "web").status == 0
    assert hivectl("list").out.splitlines()[5].split()[:1] == ["web"]
    assert "Yes [1]" in hivectl("list").out.splitlines()[5]
    result = hivectl("autostart", "add", "nosuch")
    assert result.status == 1 and result.err == "hivectl: guest nosuch does not exist\n"
    assert "examples:" in hivectl("autostart", "--help").out
