"""One place per switch type: a module of hivectl/net/switchtypes/ that ``registry`` finds.

The guard walks the network layer, the operations and the CLI: comparing ``sw.type`` (or a listed row's
``type``) with a switch-type string outside the type's own module is a second place that must learn about
every new type. The same AST walk as the device-kind guard (tests/bhyve/test_device_kinds.py). The plug-in
test writes a type module into an extra directory of the package and finds it accepted as ``type_S``.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import hivectl.net.switchtypes as switchtypes
from hivectl.errors import ConfigError, UsageError
from hivectl.net.switches import Switch, check_type
from hivectl.net.switchtypes import registry
from hivectl.net.switchtypes.base import SwitchType
from tests.bhyve.test_device_kinds import kind_tests

HIVECTL = Path(__file__).resolve().parents[2] / "hivectl"
SCANNED = ("net", "ops", "cli")


def _module_file(kind: SwitchType) -> Path:
    return Path(sys.modules[type(kind).__module__].__file__ or "").resolve()


def test_no_switch_type_is_tested_by_name_outside_its_module() -> None:
    allowed = {_module_file(t) for t in registry.TYPES}
    found = [line for folder in SCANNED for line in kind_tests(HIVECTL / folder, allowed, set(registry.NAMES))]
    assert found == []


def test_every_module_of_the_package_is_one_registered_type() -> None:
    helpers = {"__init__.py", "base.py", "registry.py"}
    registered = {_module_file(t).name for t in registry.TYPES}
    assert {p.name for p in (HIVECTL / "net" / "switchtypes").glob("*.py")} - helpers == registered
    assert len(set(registry.NAMES)) == len(registry.TYPES)


def test_the_discovered_order_is_vm_bhyves() -> None:
    assert registry.NAMES == ("standard", "manual", "vale", "netgraph", "vxlan")
    assert registry.DEFAULT == "standard"


TYPE_MODULE = """
    from hivectl.net.switchtypes.base import SwitchType


    class Geneve(SwitchType):
        name = "geneve"
        order = 50
        linux = False


    TYPE = Geneve()
"""


def test_a_new_type_is_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="geneve"):
        check_type("system.conf", "type_s1", "geneve")
    (tmp_path / "geneve.py").write_text(textwrap.dedent(TYPE_MODULE))
    monkeypatch.setattr(switchtypes, "__path__", [*switchtypes.__path__, str(tmp_path)])
    try:
        types = registry.discover()
    finally:
        sys.modules.pop(f"{switchtypes.__name__}.geneve", None)
    monkeypatch.setattr(registry, "TYPES", types)
    monkeypatch.setattr(registry, "NAMES", tuple(t.name for t in types))
    assert registry.NAMES == ("standard", "manual", "vale", "netgraph", "vxlan", "geneve")
    assert check_type("system.conf", "type_s1", "geneve") == "geneve"
    assert Switch("s1", "geneve").kind is types[-1]


@pytest.mark.parametrize("kind", registry.TYPES, ids=lambda t: t.name)
def test_a_type_without_a_bridge_refuses_private_mode_and_lists_n_a(kind: SwitchType) -> None:
    sw = Switch("s1", kind.name)
    row = {"name": "s1", "type": kind.name, "iface": "x", "address": None, "address6": None, "private": False,
           "mtu": None, "vlan": None, "ports": []}
    cells = kind.list_rows(row, lambda v: "-" if v in (None, []) else str(v))[0]
    if kind.has_bridge:
        kind.check_private(sw)
        assert cells[4] == "False"  # the PRIVATE column is shown for every bridged type
    else:
        with pytest.raises(UsageError, match="private mode needs a bridge"):
            kind.check_private(sw)
        assert cells[3:] == ["n/a"] * 5
