"""One place per switch type: a module of hivectl/net/switchtypes/ registered in ``registry.TYPES``.

The guard walks the network layer, the operations and the CLI: comparing ``sw.type`` (or a listed row's
``type``) with a switch-type string outside the type's own module is a second place that must learn about
every new type. The same AST walk as the device-kind guard (tests/bhyve/test_device_kinds.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hivectl.errors import UsageError
from hivectl.net.switches import Switch
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
