"""``hivectl import``: the cookbook's command lines, scripts, refusals with their position, the CLI.

The cookbook's lines (tests/ops/data/cookbook-lines.txt, our copies, each citing its section) are imported
with the real CLI on the simulated FreeBSD host, then ``hivectl start --dry-run``'s bhyve line is read by
the simulated bhyve's parser and compared with the original after the normalisations docs/import.md lists,
written out here once more (independently of hivectl/importer/compare.py): ``-H -P -w`` added, COM ports
compared by name, a uuid and the MAC bhyve derived written into the config, relative paths made absolute.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from hivectl.api import Hivectl
from hivectl.importer import script
from hivectl.importer.words import ImportRefused
from hivectl.rcfile import read_values
from tests.cli_helpers import hivectl
from tests.simhost import bhyve as sim_bhyve
from tests.simhost.fixture import SimHost
from tests.test_store_zfs_simhost import zhost  # noqa: F401  (fixture)

DATA = Path(__file__).resolve().parent / "data"
UEFI = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"


def cookbook() -> list[tuple[str, str | None, str]]:
    """(section comment, loader line, bhyve line) of every record of the data file."""
    records: list[tuple[str, str | None, str]] = []
    comment, loader = "", None
    for line in (DATA / "cookbook-lines.txt").read_text().splitlines():
        if line.startswith("# \""):
            comment, loader = line[2:], None
        elif line.startswith("loader: "):
            loader = line[len("loader: "):]
        elif line.startswith("bhyve: "):
            records.append((comment, loader, line[len("bhyve: "):]))
    return records


def default_mac(slot: str, func: str, name: str) -> str:
    """bhyve's MAC for a NIC without mac= (usr.sbin/bhyve/net_utils.c, net_genmac)."""
    digest = hashlib.md5(f"{slot}-{func}-{name}".encode(), usedforsecurity=False).digest()
    return "00:a0:98:" + ":".join(f"{b:02x}" for b in digest[:3])


def keys_of(argv: list[str], base: Path) -> dict[str, str]:
    """bhyve's config tree for ``argv`` with docs/import.md's normalisations applied to it."""
    out: dict[str, str] = {}
    lines = sim_bhyve.parse(argv[1:], "14").cfg.dump()
    name = next(v.partition("=")[2] for v in lines if v.startswith("name="))
    for line in lines:
        key, _, value = line.partition("=")
        nic = re.fullmatch(r"pci\.0\.([0-9]+)\.([0-9]+)\.device", key)
        if nic and value in ("virtio-net", "e1000"):
            out.setdefault(key[:-len("device")] + "mac", default_mac(nic.group(1), nic.group(2), name))
        if re.fullmatch(r"lpc\.com[1-4]\.path", key):
            value = "COM"
        elif key.endswith(".path") and value and not value.startswith("/"):
            value = str(base / value)
        out[key] = value
    for key, value in (("x86.vmexit_on_hlt", "true"), ("x86.vmexit_on_pause", "true"), ("x86.strictmsr", "false")):
        out[key] = value  # hivectl always passes -H -P -w
    return out


@pytest.mark.parametrize(("section", "loader", "line"), cookbook(), ids=[f"record{i}" for i in range(len(cookbook()))])
def test_cookbook_line_imports_and_plans_back(section: str, loader: str | None, line: str, simhost: SimHost,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vm = tmp_path / "vm"
    vm.mkdir()
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm))
    assert hivectl("init").status == 0
    argv = shlex.split(line)
    for word in argv:  # the interfaces the line names, made as an administrator would (rc.conf's cloned_interfaces)
        if ",virtio-net," in word:
            assert simhost.run(["ifconfig", word.split(",")[2], "create"]).returncode == 0
    # The cookbook's /vm/... paths live under tmp_path here; zvols are device nodes of the simulated host.
    line = line.replace(" /vm/", f" {tmp_path}/vm-made/").replace(",/vm/", f",{tmp_path}/vm-made/")
    loader = loader.replace(" /vm/", f" {tmp_path}/vm-made/") if loader else None
    for word in shlex.split(line) + shlex.split(loader or ""):
        for part in word.split(","):
            if part.startswith(f"{tmp_path}/vm-made/") or part == "disk.img":
                target = Path(part) if part.startswith("/") else tmp_path / part
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"\0" * 4096)
            if part.startswith("/dev/zvol/"):
                node = simhost.path(part)
                node.parent.mkdir(parents=True, exist_ok=True)
                node.write_bytes(b"")
    args = ["import", "-C", str(tmp_path), "--bhyve", line, *(["--loader", loader] if loader else [])]
    done = hivectl(*args)
    assert done.status == 0, f"{section}: {done.err}"
    name = argv[-1]
    conf = read_values(vm / name / f"{name}.conf")
    assert all(v.startswith("/") for k, v in conf.items() if k.endswith("_name")), conf  # full paths, never copies
    dry = hivectl("start", "--dry-run", name)
    assert dry.status == 0, dry.err
    plan = [json.loads(step) for step in dry.out.splitlines()]
    again = next(step for step in plan if step[0] == "bhyve")
    wanted = keys_of(shlex.split(line), tmp_path)
    wanted.setdefault("uuid", conf["uuid"])  # no -U: the uuid the import wrote
    assert keys_of(again, tmp_path) == wanted
    loaders = [step for step in plan if step[0] == "bhyveload"]
    if loader:
        given = shlex.split(loader)
        got = loaders[0]
        # hivectl's bhyveload: its console, and -e uuid/autoboot_delay/bhyve_vm_name (docs/import.md)
        disk = given[given.index("-d") + 1]
        assert got[got.index("-d") + 1] == (disk if disk.startswith("/") else str(tmp_path / disk))
        assert got[-1] == given[-1]
        assert got[got.index("-m") + 1] == given[given.index("-m") + 1]
        assert ("-S" in got) == ("-S" in line.split())


def test_a_relative_disk_is_found_from_the_given_directory_and_never_copied(tmp_path: Path) -> None:
    vm = tmp_path / "vm"
    hv = Hivectl(vm_dir=vm)
    vm.mkdir()
    hv.init()
    (tmp_path / "disk.img").write_bytes(b"data")
    hv.import_guest(bhyve=f"bhyve -c 1 -m 1G -s 0,hostbridge -s 4,virtio-blk,disk.img -l bootrom,{UEFI} g1",
                    directory=tmp_path)
    conf = read_values(vm / "g1" / "g1.conf")
    assert conf["disk0_name"] == str(tmp_path / "disk.img") and conf["disk0_dev"] == "custom"
    assert conf["disk0_slot"] == "4:0" and sorted(p.name for p in (vm / "g1").iterdir()) == ["g1.conf"]
    assert (tmp_path / "disk.img").read_bytes() == b"data"
    hv.destroy("g1")  # the guest goes, the disk it was given stays (it was never the guest's own file)
    assert not (vm / "g1").exists() and (tmp_path / "disk.img").read_bytes() == b"data"


def test_a_missing_disk_is_noted_not_refused(tmp_path: Path) -> None:
    """bhyve would fail at start, but the disk may be made later (a zvol restored, a file copied in)."""
    from hivectl.context import Context
    from hivectl.ops.importer import ImportRequest, plan_import

    hv = Hivectl(vm_dir=tmp_path)
    hv.init()
    ctx = Context(None, str(tmp_path))
    result = plan_import(ctx.host, ctx.store, ImportRequest(f"bhyve -c 1 -m 1G -s 4,virtio-blk,/nowhere/d.img "
                                                            f"-l bootrom,{UEFI} g"))
    assert any("/nowhere/d.img does not exist" in note for note in result.notes)


REFUSALS = [
    (f"bhyve -c 1 -m 1G -s 0,hostbridge -s 5,ahci-hd,/d.img,maybe=1 -l bootrom,{UEFI} g",
     "argument 7: '-s 5,ahci-hd,/d.img,maybe=1'"),
    (f"bhyve -c 1 -m 1G -s 3,uart,stdio -l bootrom,{UEFI} g", "argument 5: '-s 3,uart,stdio'"),
    (f"bhyve -c 2 -m 1G -p 2:3 -s 4,virtio-blk,/d.img -l bootrom,{UEFI} g", "argument 5: '-p 2:3'"),
    ("bhyve -c 1 -m 1G -Z g", "argument 5: '-Z'"),
    ("bhyve -c 1 -m 1G g -s 4,virtio-blk,/d.img", "argument 6: '-s'"),
    (f"bhyve -c 1 -m 1G -s 4,virtio-net,vale0:1 -l bootrom,{UEFI} g", "argument 5: '-s 4,virtio-net,vale0:1'"),
    (f"bhyve -c 1 -m 1G -s 4,virtio-blk,/d.img -l com1,tcp=127.0.0.1:4000 -l bootrom,{UEFI} g",
     "argument 7: '-l com1,tcp=127.0.0.1:4000'"),
    ("bhyve -c 1 -m 1G -s 4,virtio-blk,/d.img -l bootrom,/home/me/MY.fd g", "argument 7: '-l bootrom,/home/me/MY.fd'"),
    (f"bhyve -c 1 -m 1G -s 4,virtio-blk,/d.img -s 4,virtio-blk,/e.img -l bootrom,{UEFI} g",
     "argument 7: '-s 4,virtio-blk,/e.img': pci slot 0:4:0 is used twice"),
    ("bhyve -c 1 -m 1G -s 4,virtio-blk,/d.img -s 6,fbuf,tcp=0.0.0.0:5900,unix=/x g",
     "argument 7: '-s 6,fbuf,tcp=0.0.0.0:5900,unix=/x'"),
    (f"bhyve -c 1 -m 1G -s 4,nvme,ram=1024 -l bootrom,{UEFI} g", "argument 5: '-s 4,nvme,ram=1024'"),
]


@pytest.mark.parametrize(("line", "where"), REFUSALS, ids=[f"refusal{i}" for i in range(len(REFUSALS))])
def test_what_has_no_key_is_refused_with_its_position(line: str, where: str, tmp_path: Path) -> None:
    hv = Hivectl(vm_dir=tmp_path)
    hv.init()
    with pytest.raises(ImportRefused) as info:
        hv.import_guest(bhyve=line, dry_run=True)
    assert str(info.value).startswith(where), str(info.value)
    assert not (tmp_path / "g").exists()


def test_the_cookbooks_wrong_bhyveload_line_is_refused(tmp_path: Path) -> None:
    """The cookbook warns that one guide gives bhyveload the UEFI ROM; hivectl does not take it as a loader."""
    hv = Hivectl(vm_dir=tmp_path)
    hv.init()
    with pytest.raises(ImportRefused, match=re.escape("argument 1: '-l bootrom,BHYVE_UEFI.fd'")):
        hv.import_guest(bhyve="bhyve -c 1 -m 1G -s 4,virtio-blk,/d.img g",
                        loader="bhyveload -l bootrom,BHYVE_UEFI.fd -m 1G -d /d.img g", dry_run=True)


def test_a_literal_script_gives_its_command_lines_with_variables_substituted() -> None:
    found = script.find((DATA / "vm-manage-literal.sh").read_text(), "vm-manage-literal.sh")
    assert found.bhyve_line == 13 and found.loader_line == 12
    assert found.bhyve[-1] == "guest1" and "3:0,virtio-blk,/vm/instances/guest1.img" in found.bhyve
    assert found.loader == ["bhyveload", "-m", "4G", "-d", "/vm/instances/guest1.img", "-c", "/dev/nmdm0A", "guest1"]


@pytest.mark.parametrize(("name", "line", "words"), [
    ("vm-manage-argument.sh", 5, "$NAME is set on line 4 from a value that is not known"),
    ("vmrun-like.sh", 17, "$cpus is set on line 9 inside a conditional"),
])
def test_what_a_script_only_knows_when_it_runs_is_refused_with_its_line(name: str, line: int, words: str) -> None:
    with pytest.raises(ImportRefused) as info:
        script.find((DATA / name).read_text(), name)
    assert str(info.value).startswith(f"line {line}: ") and words in str(info.value)


@pytest.mark.parametrize(("text", "words"), [
    ("bhyve -c 1 -m 1G $(hostname) g\n", "command substitution"),
    ("bhyve -c 1 -m 1G -s 4,virtio-blk,/d.img g | tee log\n", "pipes"),
    ("bhyve -c 1 -m 1G g\nbhyve -c 2 -m 1G h\n", "lines 1, 2"),
    ("echo no guest here\n", "no bhyve command line"),
])
def test_script_refusals(text: str, words: str) -> None:
    with pytest.raises(Exception, match=re.escape(words)):
        script.find(text, "s.sh")


def test_import_by_script_with_the_cli_then_start_dry_run(simhost: SimHost, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    vm = tmp_path / "vm"
    vm.mkdir()
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm))
    assert hivectl("init").status == 0
    text = (DATA / "vm-manage-literal.sh").read_text().replace("/vm/instances", str(tmp_path / "instances"))
    (tmp_path / "instances").mkdir()
    (tmp_path / "instances" / "guest1.img").write_bytes(b"\0" * 4096)
    (tmp_path / "vm-manage.sh").write_text(text)
    assert simhost.run(["ifconfig", "tap0", "create"]).returncode == 0
    dry = hivectl("import", "--script", str(tmp_path / "vm-manage.sh"), "--dry-run")
    assert dry.status == 0, dry.err
    write = next(json.loads(s) for s in dry.out.splitlines() if json.loads(s)[0] == "sysrc")
    assert f"disk0_name={tmp_path}/instances/guest1.img" in write and "lpc_slot=1:0" in write
    assert not (vm / "guest1").exists()
    assert hivectl("import", "--script", str(tmp_path / "vm-manage.sh")).status == 0
    start = hivectl("start", "--dry-run", "guest1")
    assert start.status == 0, start.err
    bhyve = next(json.loads(s) for s in start.out.splitlines() if json.loads(s)[0] == "bhyve")
    assert "1:0,lpc" in " ".join(bhyve) and f"3:0,virtio-blk,{tmp_path}/instances/guest1.img" in " ".join(bhyve)


def test_import_into_a_zfs_datastore_makes_the_guest_dataset_and_nothing_else(zhost: Any,  # noqa: F811
                                                                               tmp_path: Path) -> None:
    """A ZFS vm_dir: the guest gets its dataset (staged and renamed, as create), its disk stays a zvol path."""
    node = zhost.path("/dev/zvol/zroot/old/guest1")
    node.parent.mkdir(parents=True, exist_ok=True)
    node.write_bytes(b"")
    line = f"bhyve -c 1 -m 1G -s 0,hostbridge -s 4,virtio-blk,/dev/zvol/zroot/old/guest1 -l bootrom,{UEFI} guest1"
    before = zhost.datasets()
    done = hivectl("import", "--bhyve", line)
    assert done.status == 0, done.err
    assert set(zhost.datasets()) - set(before) == {"zroot/vm/guest1"}
    conf = read_values(zhost.vm_root / "guest1" / "guest1.conf")
    assert conf["disk0_name"] == "/dev/zvol/zroot/old/guest1" and conf["disk0_dev"] == "custom"
    again = hivectl("import", "--bhyve", line)
    assert again.status != 0 and "already exists" in again.err


def _grub_install_files(tmp_path: Path, root: str) -> tuple[str, str, Path]:
    """A grub-bhyve install boot made by hand: its device map, disk, ISO (at slot 6), loader and bhyve lines."""
    disk, iso = tmp_path / "g.img", tmp_path / "media" / "netinst.iso"
    iso.parent.mkdir()
    disk.write_bytes(b"\0" * 4096)
    iso.write_bytes(b"\0" * 4096)
    (tmp_path / "device.map").write_text(f"(cd0) {iso}\n(hd0) {disk}\n")
    loader = f"grub-bhyve -m {tmp_path}/device.map -M 512M -r {root} g"
    bhyve = (f"bhyve -AHPw -u -c 1 -m 512M -s 0,hostbridge -s 31,lpc -s 4,virtio-blk,{disk} "
             f"-s 6,ahci-cd,{iso},ro,bootindex=1 -l com1,/dev/nmdm0A g")
    return loader, bhyve, iso


def test_a_grub_install_boot_imports_as_the_guest_to_install_and_plans_back_with_install(
        simhost: SimHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The medium's slot is install_slot; the ISO is nowhere in the config; ``install --dry-run`` is the line."""
    vm = tmp_path / "vm"
    vm.mkdir()
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm))
    assert hivectl("init").status == 0
    loader, bhyve, iso = _grub_install_files(tmp_path, "cd0")
    done = hivectl("import", "--bhyve", bhyve, "--loader", loader)
    assert done.status == 0, done.err
    assert done.out == f"imported g; this line boots an installer: run `hivectl install g {iso}`\n"
    text = (vm / "g" / "g.conf").read_text()
    conf = read_values(vm / "g" / "g.conf")
    assert conf["install_slot"] == "6" and "netinst" not in text and conf["loader"] == "grub", text
    plan = [json.loads(step) for step in hivectl("install", "--dry-run", "g", str(iso)).out.splitlines()]
    again = next(step for step in plan if step[0] == "bhyve")
    wanted = keys_of(shlex.split(bhyve), tmp_path)
    wanted.setdefault("uuid", conf["uuid"])  # no -U: the uuid the import wrote
    assert keys_of(again, tmp_path) == wanted
    grub = next(step for step in plan if step[0] == "grub-bhyve")
    assert grub[grub.index("-r") + 1] == "cd0"


def test_a_cd_in_the_device_map_of_a_disk_boot_is_refused(tmp_path: Path) -> None:
    """A map with (cd0) while grub-bhyve boots (hd0) is not a line hivectl makes: neither a run nor an install."""
    (tmp_path / "vm").mkdir()
    hv = Hivectl(vm_dir=tmp_path / "vm")
    hv.init()
    loader, bhyve, _ = _grub_install_files(tmp_path, "hd0,msdos1")
    with pytest.raises(ImportRefused, match=r"\(cd0\) is an install medium, but the loader boots the guest's disk"):
        hv.import_guest(bhyve=bhyve, loader=loader)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:5]


def test_a_vale_port_imports_to_the_vale_switch_that_names_it_and_plans_back(
        simhost: SimHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vm-bhyve names a VALE port vale<md5(switch)[:5]>:<md5(MAC)[:5]>: the switch of that name is the NIC's."""
    vm = tmp_path / "vm"
    vm.mkdir()
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm))
    assert hivectl("init").status == 0
    created = hivectl("switch", "create", "-t", "vale", "fast")
    assert created.status == 0, created.err
    (tmp_path / "d.img").write_bytes(b"\0" * 4096)
    mac = "58:9c:fc:00:00:2a"
    line = (f"bhyve -c 1 -m 1G -s 0,hostbridge -s 4,virtio-blk,{tmp_path}/d.img "
            f"-s 5,virtio-net,vale{_md5('fast')}:{_md5(mac)},mac={mac} -s 31,lpc -l com1,/dev/nmdm0A "
            f"-l bootrom,{UEFI} v")
    done = hivectl("import", "--bhyve", line)
    assert done.status == 0, done.err
    conf = read_values(vm / "v" / "v.conf")
    assert conf["network0_switch"] == "fast" and conf["network0_mac"] == mac and "network0_device" not in conf
    dry = hivectl("start", "--dry-run", "v")
    assert dry.status == 0, dry.err
    again = next(json.loads(s) for s in dry.out.splitlines() if json.loads(s)[0] == "bhyve")
    wanted = keys_of(shlex.split(line), tmp_path)
    wanted.setdefault("uuid", conf["uuid"])
    assert keys_of(again, tmp_path) == wanted
    # a port half that is not md5 of the MAC, and a switch id no switch has, are refused at the NIC
    other = hivectl("import", "--bhyve", line.replace(f":{_md5(mac)},", ":4c5d6,"), "w")
    assert other.status != 0 and "switch fast gives this NIC" in other.err and "not vale" in other.err, other.err
    unknown = hivectl("import", "--bhyve", line.replace(f"vale{_md5('fast')}:", "vale1a2b3:"), "w")
    assert unknown.status != 0 and "no vale switch of this host" in unknown.err, unknown.err
