"""One place per disk backing: what ``diskN_dev`` means is hivectl/model/backing.py's, asked everywhere else.

The guard walks every module of the package: a comparison with a backing name (``dev == "zvol"``,
``disk.dev in ("file", "zvol")``) or with a CD's disk type outside the module that describes it is a
second place that must learn about a new backing (issue 9 point 5). ``file`` is also an ordinary word, so
it counts only where a ``dev`` is compared. The other tests use real files and the real layout: each
property of a backing decides where the data is, whether it is made, resized and backed up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hivectl.errors import ConfigError
from hivectl.model import backing
from hivectl.model.devices import disk as disk_keys
from hivectl.model.guest import Disk
from hivectl.model.layout import GuestLayout
from hivectl.safety import disks as disk_rules

HIVECTL = Path(__file__).resolve().parents[2] / "hivectl"
OWNERS = {HIVECTL / "model" / "backing.py", HIVECTL / "model" / "devices" / "disk.py"}
# The drivers' disk kinds turn disk types into emulations (their own guards: tests/*/test_device_kinds.py),
# and ``hivectl import`` reads bhyve's emulation names, which include ``ahci-cd``, from a command line.
TYPE_OWNERS = {*(HIVECTL / "drivers" / driver / "devices" / "disk.py" for driver in ("bhyve", "qemu")),
               *(HIVECTL / "importer").glob("*.py")}
WORDS = {b.name for b in backing.BACKINGS} - {"file"}
CD_TYPES = {disk_keys.CD}


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _mentions_dev(node: ast.expr) -> bool:
    return any((isinstance(n, ast.Name) and "dev" in n.id) or (isinstance(n, ast.Attribute) and "dev" in n.attr)
               for n in ast.walk(node))


def backing_tests(root: Path, allowed: set[Path], type_allowed: frozenset[Path] = frozenset()) -> list[str]:
    """``file:line: comparison`` for every comparison with a backing name outside ``allowed`` or with a CD
    type outside ``allowed`` and ``type_allowed``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.resolve() in allowed:
            continue
        types = set() if path.resolve() in type_allowed else CD_TYPES
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            words = {s for o in operands for s in _strings(o)}
            if words & (WORDS | types) or ("file" in words and any(_mentions_dev(o) for o in operands)):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_backing_is_tested_by_name_outside_its_module() -> None:
    assert backing_tests(HIVECTL, OWNERS, frozenset(TYPE_OWNERS)) == []


def test_the_guard_sees_a_backing_test(tmp_path: Path) -> None:
    """The shapes storage/resize.py, ops/guests.py and backup.py used before (so an empty list means something)."""
    (tmp_path / "old.py").write_text('def f(disk, dev, kinds):\n'
                                     '    if disk.dev in ("zvol", "sparse-zvol") or dev == "file":\n'
                                     '        return disk.type != "ahci-cd"\n'
                                     '    return kinds == "file"\n')
    assert len(backing_tests(tmp_path, set())) == 3  # kinds == "file" is no disk test


def test_every_backing_the_key_accepts_is_described() -> None:
    assert backing.NAMES == ("file", "zvol", "sparse-zvol", "custom", "iscsi", "9p")
    assert backing.MANAGED == ("file", "zvol", "sparse-zvol")
    assert backing.of("").name == "file"  # vm-bhyve's default
    assert not backing.of("nbd").supported and backing.of("nbd").literal  # never made, never attached
    assert [b.name for b in backing.BACKINGS if b.host_path] == ["custom"]  # must exist at start


def test_where_the_data_is(tmp_path: Path) -> None:
    layout = GuestLayout(tmp_path / "g", dataset="tank/vm/g")
    places = {b.name: layout.disk_path(b.name, "d1" if not b.literal else "/dev/da0") for b in backing.BACKINGS}
    assert places == {"file": str(tmp_path / "g" / "d1"), "zvol": "/dev/zvol/tank/vm/g/d1",
                      "sparse-zvol": "/dev/zvol/tank/vm/g/d1", "custom": "/dev/da0", "iscsi": "/dev/da0",
                      "9p": "/dev/da0"}
    with pytest.raises(LookupError):
        GuestLayout(tmp_path / "g").disk_path("sparse-zvol", "d1")  # no dataset: no zvols


@pytest.mark.parametrize("dev", backing.NAMES)
def test_the_name_rule_follows_the_backing(dev: str) -> None:
    kind = Disk(0, "virtio-blk", "../up", dev).backing
    if kind.managed:
        with pytest.raises(ConfigError, match="disk0_name"):
            disk_rules.check_name("g.conf", "disk0_name", "../up", zvol=kind.zvol, in_directory=kind.in_directory)
    else:  # a literal location is the administrator's choice; only the text rule applies
        disk_rules.check_name("g.conf", "disk0_name", "../up", zvol=kind.zvol, in_directory=kind.in_directory)
