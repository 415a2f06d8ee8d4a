"""Guest names longer than 63 characters, as vm-bhyve allows (hivectl/validate.py ``guest_name``).

vm-bhyve's ``util::check_name`` accepts 231 characters; hivectl finds guests of that length, creates them
up to ``NEW_GUEST_NAME_MAX`` (every file name it derives must fit in 255 bytes: built here for real), and
bhyve's kernel limit (229 bytes) is refused at ``start`` with one line, not at create.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hivectl import validate
from hivectl.errors import ConfigError
from hivectl.model.staging import staging_name, tombstone_name
from hivectl.rcfile import atomic_write_bytes
from hivectl.storage.backup import EXTENSIONS, _stamp
from tests.cli_helpers import hivectl

LONGEST = "g" + "x" * (validate.NEW_GUEST_NAME_MAX - 2) + "1"


def long_name(length: int, tail: str = "") -> str:
    return ("w" + "e-b." * 60)[: length - len(tail)] + tail


def test_the_rule_is_vm_bhyves_characters_and_lengths() -> None:
    assert validate.NEW_GUEST_NAME_MAX == 202 and len(LONGEST) == 202
    vm_bhyve_longest = long_name(231, "z")
    assert validate.guest_name(None, "name", vm_bhyve_longest) == vm_bhyve_longest
    assert validate.guest_name(None, "name", LONGEST, new=True) == LONGEST
    with pytest.raises(ConfigError, match=r"at most 231 characters \(vm-bhyve's limit\); this one has 232"):
        validate.guest_name(None, "name", long_name(232, "z"))
    with pytest.raises(ConfigError, match=r"at most 202 characters \(the longest file name hivectl makes from it "
                                          r"adds 53 characters and a file name holds 255 bytes\); this one has 203"):
        validate.guest_name("cmd", "name", LONGEST + "2", new=True)
    for bad in ("a/b", "a b", "..", "a..b", "-a", ".hidden", "é", ""):
        with pytest.raises(ConfigError):
            validate.guest_name(None, "name", bad)


def test_every_file_name_made_from_the_longest_new_name_fits(tmp_path: Path) -> None:
    """Made on the real file system, so ENAMETOOLONG would show."""
    directory = tmp_path / LONGEST
    directory.mkdir()
    config = directory / f"{LONGEST}.conf"
    atomic_write_bytes(config, b'loader="bhyveload"\n')  # its temporary file: .NAME.conf.<pid>.<8>.tmp
    assert config.read_bytes() == b'loader="bhyveload"\n'
    (directory / f".{LONGEST}.conf.lock").touch()
    for entry in (staging_name(LONGEST), tombstone_name(LONGEST)):
        (tmp_path / entry).mkdir()
    worst_pid = "4194304"  # Linux's largest pid_max; FreeBSD's pids have at most 5 digits
    assert len(f".{LONGEST}.conf.{worst_pid}.12345678.tmp") <= validate.NAME_MAX
    backup = f"{LONGEST}.{_stamp(datetime.now(UTC))}.backup.tar{max(EXTENSIONS.values(), key=len)}"
    temporary = f".{backup}.12345678.tmp"  # backup.py's mkstemp(prefix=".NAME.", suffix=".tmp")
    assert len(temporary) == validate.NAME_MAX
    (tmp_path / temporary).touch()
    with pytest.raises(OSError, match="too long"):
        (tmp_path / ("x" + temporary)).touch()


def test_create_list_rename_destroy_a_long_named_guest(vmdir: Path) -> None:
    result = hivectl("create", "-s", "1G", LONGEST)
    assert result.status == 0, result.err
    assert (vmdir / LONGEST / f"{LONGEST}.conf").is_file()
    names = [row["name"] for row in hivectl("list", "--json").json()]
    assert names == [LONGEST]
    refused = hivectl("create", LONGEST + "2")
    assert refused.status != 0 and "at most 202 characters" in refused.err
    renamed = LONGEST[:-1] + "2"
    assert hivectl("rename", LONGEST, renamed).status == 0
    assert hivectl("destroy", "-f", renamed).status == 0
    assert [p.name for p in vmdir.iterdir() if LONGEST[:-1] in p.name] == []


def _vm_bhyve_guest(host: Any, name: str) -> None:
    """A guest as vm-bhyve 1.8 would have made it (its name check allows up to 231 characters)."""
    directory = host.vm_dir / name
    directory.mkdir()
    with open(directory / "disk0.img", "wb") as disk:
        disk.truncate(1 << 30)
    (directory / f"{name}.conf").write_text(
        'loader="bhyveload"\ncpu=1\nmemory=256M\nnetwork0_type="virtio-net"\nnetwork0_switch="public"\n'
        'network0_mac="58:9c:fc:00:00:01"\ndisk0_type="virtio-blk"\ndisk0_name="disk0.img"\n'
        'uuid="6a4c1f3e-0000-4000-8000-000000000001"\n')


def test_bhyves_kernel_limit_refuses_at_start(host: Any) -> None:
    too_long, fits = long_name(230, "a"), long_name(229, "b")
    for name in (too_long, fits):
        _vm_bhyve_guest(host, name)
    assert {row["name"] for row in hivectl("list", "--json").json()} == {too_long, fits}
    line = ("the guest name has 230 characters, but bhyve's VM names are at most 229 (VM_MAX_NAMELEN, "
            "sys/amd64/include/vmm.h): rename the guest")
    refused = hivectl("start", too_long)
    assert refused.status == 1 and line in refused.err and len(refused.err.splitlines()) == 1, refused.err
    assert host.running() == {} and not any(argv[0] == "bhyve" for argv in host.commands())
    assert line in hivectl("start", "--dry-run", too_long).err
    planned = hivectl("start", "--dry-run", fits)
    assert planned.status == 0 and "VM_MAX_NAMELEN" not in planned.err, planned.err
