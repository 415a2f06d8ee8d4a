"""Guest CRUD on a ZFS vm_dir (``vm_dir="zfs:zroot/vm"``) against the simulated FreeBSD host.

The datasets, zvols and files are checked in the simulated host's state and on disk, laid out as vm-bhyve
lays them out: dataset ``zroot/vm/NAME``, zvols ``zroot/vm/NAME/diskN`` with ``volmode=dev``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hivectl.ops.system import shipped_templates
from hivectl.rcfile import read_values
from tests.cli_helpers import hivectl


@pytest.fixture
def zhost(simhost: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    assert simhost.run(["zfs", "create", "zroot/vm"]).returncode == 0
    rc = tmp_path / "rc.conf"
    rc.write_text('vm_dir="zfs:zroot/vm"\n')
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    monkeypatch.delenv("HIVECTL_VM_DIR", raising=False)
    result = hivectl("init")
    assert result.status == 0, result.err
    simhost.vm_root = Path(props(simhost, "zroot/vm", "mountpoint")["mountpoint"])
    return simhost


def props(host: Any, name: str, names: str = "volsize,volmode") -> dict[str, str]:
    """Properties as the simulated zfs reports them (``zfs get -H -p``)."""
    done = host.run(["zfs", "get", "-H", "-p", "-o", "property,value", names, name])
    assert done.returncode == 0, done.stderr
    return dict(line.split("\t") for line in done.stdout.splitlines())


@pytest.mark.parametrize("template", sorted(shipped_templates()))
def test_create_each_template_on_zfs(zhost: Any, template: str) -> None:
    result = hivectl("create", "-t", template, "g")
    assert result.status == 0, result.err
    datasets = zhost.datasets()
    assert "zroot/vm/g" in datasets
    values = read_values(zhost.vm_root / "g" / "g.conf")
    assert "disk0_size" not in values and values["uuid"] and values["network0_mac"].startswith("58:9c:fc:0")
    if values.get("disk0_dev") in ("zvol", "sparse-zvol"):
        zvol = props(zhost, "zroot/vm/g/disk0")
        assert zvol["volmode"] == "dev"
        assert int(zvol["volsize"]) == 20 << 30
        assert zhost.path("/dev/zvol/zroot/vm/g/disk0").stat().st_size == 20 << 30
    else:
        disk = zhost.vm_root / "g" / values["disk0_name"]
        assert disk.stat().st_blocks == 0 and (disk.stat().st_mode & 0o777) == 0o600


def test_list_info_rename_add_destroy_on_zfs(zhost: Any) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "web").status == 0
    rows = hivectl("list", "--json").json()
    assert [(r["name"], r["datastore"], r["state"]) for r in rows] == [("web", "default", "Stopped")]
    info = hivectl("info", "--json", "web").json()
    assert info["dataset"] == "zroot/vm/web" and info["disks"][0]["path"] == "/dev/zvol/zroot/vm/web/disk0"
    assert info["disks"][0]["size"] == 20 << 30
    result = hivectl("rename", "web", "www")
    assert result.status == 0, result.err
    assert "zroot/vm/www/disk0" in zhost.datasets() and "zroot/vm/web" not in zhost.datasets()
    assert (zhost.vm_root / "www" / "www.conf").is_file()
    result = hivectl("add", "-d", "disk", "-s", "5G", "-t", "sparse-zvol", "www")
    assert result.status == 0, result.err
    assert int(props(zhost, "zroot/vm/www/disk1")["volsize"]) == 5 << 30
    assert read_values(zhost.vm_root / "www" / "www.conf")["disk1_dev"] == "sparse-zvol"
    assert hivectl("add", "-d", "network", "-s", "public", "www").status == 0
    result = hivectl("destroy", "-f", "www")
    assert result.status == 0, result.err
    assert not [d for d in zhost.datasets() if d.startswith("zroot/vm/www")]
    assert not (zhost.vm_root / "www").exists()
