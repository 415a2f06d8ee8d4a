"""The catalog of operations (hivectl/catalog.py) covers the whole Python API and places every operation.

The catalog is derived from ``hivectl.api.Hivectl``; these tests check the derivation against the class
itself (every public method is reachable through at least one operation, with its real parameters), that
each entry has a role and a resource path the authorization can check, and that the rules refuse what
they cannot place rather than defaulting it to ``/``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from hivectl import catalog
from hivectl.api import Hivectl
from hivectl.errors import HIDDEN, UsageError


def public_methods() -> set[str]:
    return {n for n, v in vars(Hivectl).items() if not n.startswith("_") and inspect.isfunction(v)}


def test_every_hivectl_method_is_an_operation() -> None:
    methods = public_methods()
    assert len(methods) > 50, "the scan of Hivectl found too little to check anything"
    reached = {op.method for op in catalog.operations()}
    assert methods - reached == set(), f"Hivectl methods missing from the catalog: {sorted(methods - reached)}"
    assert reached <= methods, f"catalog entries calling no Hivectl method: {sorted(reached - methods)}"


@pytest.mark.parametrize("op", catalog.operations(), ids=lambda op: op.name)
def test_each_entry_is_complete(op: catalog.Operation) -> None:
    assert op.role in catalog.ROLES, f"{op.name}: role {op.role!r}"
    assert op.path in {"/", "/guests/{name}", "/switches/{name}", "/datastores/{name}"}, f"{op.name}: {op.path}"
    assert (op.target is None) == (op.path == "/"), f"{op.name}: path {op.path} with target {op.target}"
    if op.target is not None:
        assert op.target in {p.name for p in op.params}, f"{op.name}: target {op.target} is not a parameter"
    assert op.summary, f"{op.name}: no summary"
    signature = inspect.signature(getattr(Hivectl, op.method))
    assert op.mutating == ("dry_run" in signature.parameters) or op.name.endswith("_list")
    for param in op.params:
        assert param.name in signature.parameters, f"{op.name}: {param.name} is not in the method's signature"
    if not op.mutating:
        assert op.role == "viewer" or op.name in catalog.OPERATOR | catalog.ADMIN_READS, \
            f"{op.name}: a read needing {op.role}"


def test_roles_follow_issue_11() -> None:
    ops = catalog.by_name()
    assert {n for n, op in ops.items() if op.role == "operator"} == set(catalog.OPERATOR)
    assert ops["guests"].role == "viewer" and ops["info"].role == "viewer"
    assert ops["events"].role == "viewer" and ops["audit"].role == "admin"
    assert ops["destroy"].role == "admin" and ops["set_settings"].role == "admin"
    assert ops["iso_list"].role == "viewer" and ops["iso_download"].role == "admin"
    assert ops["start"].asynchronous and ops["iso_download"].asynchronous and not ops["info"].asynchronous
    assert not ops["iso_list"].mutating and ops["iso_download"].param("url").required


def test_resource_paths() -> None:
    ops = catalog.by_name()
    assert ops["stop"].resources({"names": ["a", "b"]}) == ["/guests/a", "/guests/b"]
    assert ops["clone"].resources({"spec": "web@snap1", "new": "x"}) == ["/guests/web"]
    assert ops["switch_vlan"].resources({"name": "public", "vlan": "10"}) == ["/switches/public"]
    assert ops["datastore_remove"].resources({"name": "tank"}) == ["/datastores/tank"]
    assert ops["version"].resources({}) == ["/"]


def test_a_method_the_rules_cannot_place_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def frobnicate(self: Hivectl, widget: str, dry_run: bool = False) -> list[list[str]]:
        """Frobnicate a widget."""
        return []

    monkeypatch.setattr(Hivectl, "frobnicate", frobnicate, raising=False)
    catalog.operations.cache_clear()
    try:
        with pytest.raises(catalog.CatalogError, match="frobnicate: no resource path"):
            catalog.operations()
    finally:
        monkeypatch.undo()
        catalog.operations.cache_clear()
    assert "frobnicate" not in catalog.by_name()


def test_a_new_guest_method_appears_with_admin_role(monkeypatch: pytest.MonkeyPatch) -> None:
    def defrag(self: Hivectl, name: str, dry_run: bool = False) -> list[list[str]]:
        """Defragment a guest's disks."""
        return [["defrag", name]]

    monkeypatch.setattr(Hivectl, "defrag", defrag, raising=False)
    catalog.operations.cache_clear()
    try:
        op = catalog.get("defrag")
        assert (op.role, op.path, op.mutating, op.asynchronous) == ("admin", "/guests/{name}", True, False)
    finally:
        monkeypatch.undo()
        catalog.operations.cache_clear()


def test_paths_travel_as_strings() -> None:
    op = catalog.get("create")
    assert op.param("keyfile").type == str | None
    assert op.param("name").required and not op.param("template").required
    assert op.param("template").default == "default"
    assert catalog.get("set").param("keys").variadic


def test_secrets_are_redacted() -> None:
    configure = catalog.get("configure")
    assert configure.param("text").secret
    shown = catalog.redact(configure, {"name": "web", "text": 'vnc_password="hunter2"\n'})
    assert shown == {"name": "web", "text": HIDDEN}
    shown = catalog.redact(catalog.get("set"), {"name": "web", "keys": {"vnc_password": "hunter2", "cpu": "2"}})
    assert shown == {"name": "web", "keys": {"vnc_password": HIDDEN, "cpu": "2"}}
    text = catalog.redact_text('cpu="2"\nvnc_password="hunter2"\nmemory=1G\n')
    assert "hunter2" not in text and 'vnc_password="(hidden)"' in text and 'cpu="2"' in text


def test_invoke_calls_the_method_with_its_arguments(tmp_path: Path) -> None:
    hv = Hivectl(vm_dir=tmp_path / "vm", driver="bhyve")
    assert catalog.invoke(hv, catalog.get("version"), {}) == hv.version()
    with pytest.raises(UsageError, match="unknown argument"):
        catalog.invoke(hv, catalog.get("version"), {"bogus": 1})
    with pytest.raises(UsageError, match=r"missing argument.*name"):
        catalog.invoke(hv, catalog.get("info"), {})
    with pytest.raises(UsageError, match="no dry run"):
        catalog.invoke(hv, catalog.get("version"), {}, dry_run=True)
    captured: dict[str, Any] = {}

    class Recorder(Hivectl):
        def set(self, name: str, dry_run: bool = False, **keys: str) -> list[list[str]]:
            captured.update(name=name, dry_run=dry_run, keys=keys)
            return []

    catalog.invoke(Recorder(vm_dir=tmp_path), catalog.get("set"), {"name": "w", "keys": {"cpu": "2"}}, dry_run=True)
    assert captured == {"name": "w", "dry_run": True, "keys": {"cpu": "2"}}


@pytest.mark.parametrize("args", [
    {"name": "a\0b"}, {"name": "web\nmemory=64G"}, {"name": "w\u2028x"}, {"name": "\ud800"},
])
def test_invoke_refuses_what_the_cli_edge_refuses(tmp_path: Path, args: dict[str, Any]) -> None:
    from hivectl.errors import ConfigError

    with pytest.raises(ConfigError, match="info request: name="):
        catalog.invoke(Hivectl(vm_dir=tmp_path), catalog.get("info"), args)


def test_invoke_checks_inside_lists_and_mappings_and_hides_secrets(tmp_path: Path) -> None:
    from hivectl.errors import ConfigError

    hv = Hivectl(vm_dir=tmp_path)
    with pytest.raises(ConfigError, match="names="):
        catalog.invoke(hv, catalog.get("stop"), {"names": ["ok", "bad\r"]})
    with pytest.raises(ConfigError) as refused:
        catalog.invoke(hv, catalog.get("set"), {"name": "w", "keys": {"vnc_password": "se\ncret"}})
    assert "se" not in str(refused.value).replace("set request", "") and HIDDEN in str(refused.value)
    with pytest.raises(ConfigError, match="NUL"):
        catalog.invoke(hv, catalog.get("configure"), {"name": "w", "text": 'cpu="1"\n\0'})
