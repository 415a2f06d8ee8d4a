"""Every operation of the catalog (hivectl/catalog.py) against the policy, with real tokens and grants.

A viewer token is refused every mutating operation and allowed every read; an operator token on one guest
is allowed exactly the operator operations on that guest. The resources come from each operation's own
``resources`` (the daemon checks the same ones, once per request), so a new operation is covered as soon
as it is in the catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hivectl import catalog
from hivectl.auth import acl, policy, tokens
from hivectl.auth.errors import Forbidden

NOBODY = 65534


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    (tmp_path / ".config").mkdir()
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "web.conf").write_text('loader="uefi"\n')
    return tmp_path


def _args(op: catalog.Operation) -> dict[str, Any]:
    """Arguments naming guest ``web`` (or switch/datastore ``web``) for the operation's target."""
    if op.target is None:
        return {}
    is_list = "list" in op.param(op.target).type_text
    return {op.target: ["web"] if is_list else "web"}


def test_a_viewer_token_is_refused_every_mutating_operation(vm: Path) -> None:
    acl.add(vm, acl.make_grant("admin", "/", "nobody"))  # the owner could; the token may only view
    principal = tokens.authenticate(vm, tokens.create(vm, NOBODY, role="viewer", path="/")[1])
    refused = allowed = 0
    for op in catalog.operations():
        for resource in op.resources(_args(op)):
            if op.role == "viewer":
                policy.authorize(vm, principal, op.role, resource)
                allowed += 1
            else:
                with pytest.raises(Forbidden):
                    policy.authorize(vm, principal, op.role, resource)
                refused += 1
    mutating = [op.name for op in catalog.operations() if op.mutating]
    assert all(catalog.get(name).role != "viewer" for name in mutating)
    assert refused >= len(mutating) > 40 and allowed > 10


def test_an_operator_token_on_one_guest_may_do_the_operator_operations_there_only(vm: Path) -> None:
    acl.add(vm, acl.make_grant("admin", "/", "nobody"))
    principal = tokens.authenticate(vm, tokens.create(vm, NOBODY, role="operator", path="/guests/web")[1])
    for op in catalog.operations():
        for resource in op.resources(_args(op)):
            may = resource == "/guests/web" and op.role in ("viewer", "operator")
            if may:
                policy.authorize(vm, principal, op.role, resource)
            else:
                with pytest.raises(Forbidden):
                    policy.authorize(vm, principal, op.role, resource)
    assert {op.name for op in catalog.operations() if op.role == "operator"} >= {"start", "stop", "console",
                                                                                  "snapshot"}
