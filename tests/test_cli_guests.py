"""The guest CRUD commands against a scratch vm_dir, through the real command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hivectl.ops.system import shipped_templates
from hivectl.rcfile import read_values
from tests.cli_helpers import hivectl, tree


def test_init_installs_layout_and_every_template(vmdir: Path) -> None:
    for sub in (".config", ".templates", ".iso", ".img"):
        assert (vmdir / sub).is_dir()
    assert (vmdir / ".config" / "null.iso").stat().st_size == 0
    names = {p.stem for p in (vmdir / ".templates").glob("*.conf")}
    assert names == set(shipped_templates())
    assert {"default", "windows", "debian", "ubuntu", "centos", "alpine", "arch", "openbsd", "netbsd", "dragonfly",
            "freebsd-uefi", "freebsd-zvol"} <= names
    # init never overwrites a template the administrator edited
    (vmdir / ".templates" / "default.conf").write_text('loader="uefi"\n')
    assert hivectl("init").status == 0
    assert (vmdir / ".templates" / "default.conf").read_text() == 'loader="uefi"\n'


@pytest.mark.parametrize("template", sorted(t for t in shipped_templates() if t != "freebsd-zvol"))
def test_create_from_each_file_template(vmdir: Path, template: str) -> None:
    result = hivectl("create", "-t", template, "g1")
    assert result.status == 0, result.err
    conf = vmdir / "g1" / "g1.conf"
    values = read_values(conf)
    tvalues = read_values(vmdir / ".templates" / f"{template}.conf")
    for key, value in tvalues.items():
        if key.endswith("_size"):
            assert key not in values, "diskN_size is consumed at create"
        else:
            assert values[key] == value
    assert len(values["uuid"]) == 36
    assert values["network0_mac"].startswith("58:9c:fc:0")
    disk = vmdir / "g1" / values["disk0_name"]
    size = tvalues.get("disk0_size", "20G")
    assert disk.stat().st_size == int(size[:-1]) << 30
    assert disk.stat().st_blocks == 0, "disks are sparse"
    assert (disk.stat().st_mode & 0o777) == 0o600


def test_create_options_and_list(vmdir: Path) -> None:
    assert hivectl("create", "-s", "5G", "-c", "2", "-m", "1G", "web").status == 0
    assert (vmdir / "web" / "disk0.img").stat().st_size == 5 << 30
    values = read_values(vmdir / "web" / "web.conf")
    assert (values["cpu"], values["memory"]) == ("2", "1G")
    Path(os.environ["HIVECTL_RC_CONF"]).write_text('vm_list="db web"\nvm_delay="5"\n')
    assert hivectl("create", "db").status == 0
    table = hivectl("list").out.splitlines()
    assert table[0].split() == ["NAME", "DATASTORE", "LOADER", "CPU", "MEMORY", "VNC", "AUTO", "STATE", "TAGS"]
    assert table[2].split() == ["web", "default", "bhyveload", "2", "1G", "-", "Yes", "[2]", "Stopped", "-"]
    rows = hivectl("l", "--json").json()
    assert [r["name"] for r in rows] == ["db", "web"]
    for row in rows:
        assert {"name", "datastore", "loader", "cpu", "memory", "vnc", "auto", "state"} <= set(row)
    assert rows[1]["auto"] is True and rows[1]["auto_order"] == 2 and rows[1]["state"] == "Stopped"


def test_list_tags_column_and_chosen_columns(vmdir: Path) -> None:
    """vm-bhyve 1.8's TAGS column (last, comma-joined, '-' without tags) and ``list -o``."""
    for name in ("db", "web"):
        assert hivectl("create", name).status == 0
    assert hivectl("tags", "add", "web", "prod", "eu-west").status == 0
    Path(os.environ["HIVECTL_RC_CONF"]).write_text('vm_list="web"\n')
    table = hivectl("list").out.splitlines()
    assert table[0].split()[-2:] == ["STATE", "TAGS"]
    assert table[1].split()[-2:] == ["Stopped", "-"] and table[2].split()[-2:] == ["Stopped", "prod,eu-west"]
    picked = hivectl("list", "-o", "tags,NAME,Auto").out.splitlines()
    assert [line.split() for line in picked] == [["TAGS", "NAME", "AUTO"], ["-", "db", "No"],
                                                  ["prod,eu-west", "web", "Yes", "[1]"]]
    assert picked[0].index("NAME") == len("prod,eu-west") + 2, "columns aligned as column -t does"
    rows = hivectl("list", "-o", "name,auto,tags", "--json").json()
    assert rows == [{"name": "db", "auto": False, "auto_order": None, "tags": []},
                    {"name": "web", "auto": True, "auto_order": 1, "tags": ["prod", "eu-west"]}]
    assert hivectl("list", "-t", "prod", "-o", "name").out.split() == ["NAME", "web"]
    for bad, shown in (("name,colour", "'colour'"), ("name,,state", "an empty name"), ("", "an empty name")):
        result = hivectl("list", "-o", bad)
        assert result.status == 2 and result.out == "", bad
        assert result.err == (f"hivectl: list -o {bad}: unknown column {shown}; valid columns: "
                              "name,datastore,loader,cpu,memory,vnc,auto,state,tags\n"), result.err


def test_info_json_and_yaml(vmdir: Path) -> None:
    assert hivectl("create", "web").status == 0
    info = hivectl("info", "--json", "web").json()
    assert info["name"] == "web" and info["disks"][0]["size"] == 20 << 30 and info["networks"][0]["switch"] == "public"
    text = hivectl("info", "web").out
    assert 'name: "web"' in text and "disks:" in text


def test_add_disk_and_network(vmdir: Path) -> None:
    assert hivectl("create", "web").status == 0
    assert hivectl("add", "-d", "disk", "-s", "2G", "web").status == 0
    assert hivectl("add", "-d", "network", "-s", "lan", "web").status == 0
    values = read_values(vmdir / "web" / "web.conf")
    assert values["disk1_name"] == "disk1.img" and values["disk1_type"] == "virtio-blk"
    assert (vmdir / "web" / "disk1.img").stat().st_size == 2 << 30
    assert values["network1_switch"] == "lan" and values["network1_type"] == "virtio-net"
    assert values["network1_mac"] != values["network0_mac"]


def test_rename_and_destroy(vmdir: Path) -> None:
    assert hivectl("create", "a").status == 0
    assert hivectl("rename", "a", "b").status == 0
    assert (vmdir / "b" / "b.conf").is_file() and not (vmdir / "a").exists()
    assert hivectl("destroy", "b").status == 2, "no terminal and no -f: refuse"
    assert (vmdir / "b").exists()
    assert hivectl("destroy", "-f", "b").status == 0
    assert not (vmdir / "b").exists()


def test_running_guest_is_protected(vmdir: Path) -> None:
    import socket

    assert hivectl("create", "a").status == 0
    (vmdir / "a" / "run.lock").write_text(f"{socket.gethostname()}\npid={os.getpid()}\n")
    before = tree(vmdir)
    assert hivectl("destroy", "-f", "a").status == 1
    assert hivectl("rename", "a", "b").status == 1
    assert tree(vmdir) == before
    (vmdir / "a" / "run.lock").write_text("otherhost\n")
    assert "Locked (otherhost)" in hivectl("list").out


def test_dry_run_changes_nothing_and_prints_json_arrays(vmdir: Path) -> None:
    before = tree(vmdir)
    result = hivectl("create", "--dry-run", "-t", "windows", "w")
    assert result.status == 0
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert all(isinstance(line, list) and all(isinstance(x, str) for x in line) for line in lines)
    # Built under a hidden staging directory, published by one rename (docs/reliability.md).
    staging = Path(lines[0][-1])
    assert lines[0][:3] == ["mkdir", "-m", "755"] and staging.name.startswith(".hivectl-staging-w-")
    assert ["truncate", "-s", "60G", str(staging / "disk0.img")] in lines
    assert lines[-1] == ["mv", str(staging), str(vmdir / "w")]
    assert tree(vmdir) == before


BAD_NAMES = ["a/b", "a b", "a;b", "..", "", "x" * 203]  # 202: the longest new guest name


@pytest.mark.parametrize("args", [*[("create", n) for n in BAD_NAMES], ("create", "-m", "4Q", "ok"),
                                  ("create", "-c", "0", "ok"), ("create", "-t", "nosuch", "ok"),
                                  ("create", "-s", "lots", "ok"), ("create", "-d", "nosuch", "ok"),
                                  ("info", "../etc"), ("destroy", "-f", "a;rm"), ("rename", "missing", "x")])
def test_bad_input_one_line_and_nothing_touched(vmdir: Path, args: tuple[str, ...]) -> None:
    before = tree(vmdir)
    result = hivectl(*args)
    assert result.status in (1, 2)
    assert len(result.err.strip().splitlines()) == 1 and result.err.startswith("hivectl: ")
    assert tree(vmdir) == before


def test_usage_errors_exit_2(vmdir: Path) -> None:
    assert hivectl("frobnicate").status == 2
    assert hivectl("r").status == 2, "ambiguous prefix (rename)?"
    assert hivectl("create").status == 2
    assert hivectl("list", "--bogus").status == 2


def test_failed_create_rolls_back(vmdir: Path) -> None:
    (vmdir / ".templates" / "big.conf").write_text(
        'loader="bhyveload"\ncpu=1\nmemory=256M\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
        'disk1_type="virtio-blk"\ndisk1_name="disk1"\ndisk1_dev="zvol"\n')
    before = tree(vmdir)
    result = hivectl("create", "-t", "big", "g")
    assert result.status == 1 and "zvol" in result.err
    assert tree(vmdir) == before


def test_settings_and_datastores(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("set", "console=tmux").status == 0
    assert hivectl("get", "--json", "console").json() == {"console": "tmux"}
    assert hivectl("set", "console=serial").status == 1
    assert hivectl("set", "color=red").status == 1
    other = tmp_path / "fast"
    other.mkdir()
    assert hivectl("datastore", "add", "fast", str(other)).status == 0
    assert hivectl("datastore", "add", "fast", str(other)).status == 1
    assert hivectl("create", "-d", "fast", "g").status == 0
    assert (other / "g" / "g.conf").is_file()
    rows = hivectl("datastore", "list", "--json").json()
    assert [r["name"] for r in rows] == ["default", "fast"]
    assert [r["datastore"] for r in hivectl("list", "--json").json()] == ["fast"]
    assert hivectl("create", "g").status == 1, "a name is unique across datastores"
    assert hivectl("datastore", "remove", "fast").status == 0
    assert (other / "g" / "g.conf").is_file(), "remove never deletes data"
    system = read_values(vmdir / ".config" / "system.conf")
    assert system["datastore_list"] == "" and "path_fast" not in system


def test_version_and_help() -> None:
    result = hivectl("version")
    assert result.status == 0 and "hivectl" in result.out
    assert "usage: hivectl" in hivectl("--help").out
    help_text = hivectl("help", "create").out
    assert "diskN_size" in help_text and "-t TEMPLATE" in help_text


def test_set_writes_the_daemons_listener_keys_that_hivectld_then_reads(vmdir: Path) -> None:
    """docs/api.md tells administrators to make hivectld's listener permanent with ``hivectl set``."""
    from hivectl.daemon.server import parse_args, resolve

    sock = vmdir / ".config" / "d.sock"
    assert hivectl("set", f"hivectld_socket={sock}", "hivectld_group=root").status == 0
    assert hivectl("get", "--json", "hivectld_group").json() == {"hivectld_group": "root"}
    listen = resolve(parse_args([]), vmdir)
    assert listen.socket == sock
    assert hivectl("set", "hivectld_colour=red").status == 1, "only the daemon's own keys"
