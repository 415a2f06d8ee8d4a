"""The Python API does what the CLI does: same validation, same files, same plans."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hivectl.api import Hivectl
from hivectl.errors import ConfigError, Conflict
from hivectl.rcfile import read_values


def test_create_list_info_set_rename_destroy(vmdir: Path) -> None:
    hv = Hivectl()
    assert "debian" in hv.templates()
    planned = hv.create("web", template="debian", size="2G", dry_run=True)
    staging = planned[0][-1]  # built in a hidden staging directory, published by one rename
    assert ["truncate", "-s", "2G", f"{staging}/disk0.img"] in planned
    assert planned[-1] == ["mv", staging, str(vmdir / "web")]
    assert not (vmdir / "web").exists(), "a dry run changes nothing"
    hv.create("web", template="debian", size="2G", cpu="2")
    assert [(r["name"], r["cpu"], r["state"]) for r in hv.guests()] == [("web", "2", "Stopped")]
    assert hv.info("web")["disks"][0]["size"] == 2 << 30
    hv.set("web", memory="2G", tags="prod")
    assert read_values(vmdir / "web" / "web.conf")["memory"] == "2G"
    assert [r["name"] for r in hv.guests(tag="prod")] == ["web"]
    with pytest.raises(ConfigError, match=r"memory='4Q'"):
        hv.set("web", memory="4Q")
    with pytest.raises(Conflict):
        hv.create("web")
    hv.rename("web", "www")
    hv.destroy("www")
    assert hv.guests() == []


def test_explicit_vm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)
    monkeypatch.setenv("HIVECTL_RC_CONF", str(tmp_path / "none.conf"))
    monkeypatch.setenv("HIVECTL_PLATFORM", "linux")
    (tmp_path / "vm").mkdir()
    hv = Hivectl(vm_dir=tmp_path / "vm")
    hv.init()
    hv.create("a", size="1G")
    assert (tmp_path / "vm" / "a" / "a.conf").is_file()
    assert "HIVECTL_VM_DIR" not in os.environ, "the API does not change the process environment"
