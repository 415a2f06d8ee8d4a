"""The vm-bhyve config reader keeps vm-bhyve's quirks; the writer keeps everything it does not change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hivectl.errors import ConfigError
from hivectl.rcfile import RcFile, atomic_write, parse_text

QUIRKY = """\
# comment line
loader="bhyveload"
cpu=2
cpu="4"
memory="1G" # trailing comment
  indented="ignored"
Upper="ignored"
disk0_name="a#b"
network0_switch = "public"
quoted="say "hi""
single='kept'
nokey
"""


def test_reader_keeps_vm_bhyve_quirks() -> None:
    values = parse_text(QUIRKY)
    assert values["loader"] == "bhyveload"
    assert values["cpu"] == "2", "first occurrence wins"
    assert values["memory"] == "1G"
    assert "indented" not in values and "Upper" not in values, "only lines starting with a-z count"
    assert values["disk0_name"] == "a", "# cuts the value even inside quotes"
    assert "network0_switch" not in values and values["network0_switch "] == ' public', "key must match exactly"
    assert values["quoted"] == "say hi", "every double quote is deleted"
    assert values["single"] == "'kept'"
    assert "nokey" not in values


def test_writer_replaces_in_place_and_keeps_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "g.conf"
    path.write_text(QUIRKY)
    rc = RcFile.load(path)
    rc.set("cpu", "8")
    rc.set("tags", "web prod")
    rc.unset("single")
    rc.save()
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "# comment line"
    assert lines[2] == 'cpu="8"', "the line the reader uses is replaced where it stands"
    assert 'cpu="4"' in lines, "later duplicates are left alone"
    assert lines[-1] == 'tags="web prod"', "new keys are appended"
    assert "single='kept'" not in text
    assert '  indented="ignored"' in lines and 'memory="1G" # trailing comment' in lines
    assert parse_text(text)["cpu"] == "8"


def test_list_add_and_remove(tmp_path: Path) -> None:
    rc = RcFile(tmp_path / "system.conf")
    rc.list_add("switch_list", "public")
    rc.list_add("switch_list", "lan")
    rc.list_add("switch_list", "public")
    assert rc.get("switch_list") == "public lan"
    rc.list_remove("switch_list", "public")
    assert rc.get("switch_list") == "lan"


@pytest.mark.parametrize("value", ['a"b', "a#b", "a\nb"])
def test_values_the_format_cannot_carry_are_refused(tmp_path: Path, value: str) -> None:
    rc = RcFile(tmp_path / "x.conf")
    with pytest.raises(ConfigError) as info:
        rc.set("memory", value)
    assert "x.conf" in str(info.value) and "memory" in str(info.value)


def test_atomic_write_keeps_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "g.conf"
    path.write_text("cpu=1\n")
    os.chmod(path, 0o600)
    atomic_write(path, "cpu=2\n")
    assert path.read_text() == "cpu=2\n"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.conf"]


def test_a_temp_file_whose_writer_is_a_zombie_is_collected_and_a_live_writers_is_kept(tmp_path: Path) -> None:
    """A writer killed before its rename leaves ``.NAME.PID.RAND.tmp``; the next write of NAME removes it
    once PID no longer runs. A zombie (exited, not yet reaped by its parent) has finished writing for good:
    its temp file is collected too (the old private liveness check in rcfile took the zombie for alive)."""
    import subprocess
    import time

    zombie = subprocess.Popen(["true"])  # a child left unreaped on purpose
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        target = tmp_path / "web.conf"
        dead = tmp_path / f".web.conf.{zombie.pid}.abc123.tmp"
        live = tmp_path / f".web.conf.{os.getpid()}.def456.tmp"
        other = tmp_path / f".db.conf.{zombie.pid}.abc123.tmp"
        for path in (dead, live, other):
            path.write_text("half a config\n")
        atomic_write(target, 'loader="bhyveload"\n')
        assert target.read_text() == 'loader="bhyveload"\n'
        assert not dead.exists(), "the zombie writer's temp file was kept"
        assert live.exists() and other.exists()
    finally:
        zombie.wait()
