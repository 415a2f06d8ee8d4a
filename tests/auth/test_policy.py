"""The policy over real files and real accounts: inheritance over roles x paths, replacement, owners, tokens.

The expected answers are computed by a rule written independently of the policy (a path inherits from
every path that is a prefix of it; a guest also from its datastore), then every (grant, target, needed role)
combination is checked against ``authorize``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hivectl.auth import acl, policy, tokens
from hivectl.auth.errors import Forbidden
from hivectl.auth.model import ROLES
from hivectl.auth.principal import Principal
from hivectl.errors import ConfigError

NOBODY = Principal.for_uid(65534)  # a real account: user nobody, primary group nogroup
PATHS = ["/", "/guests", "/guests/web", "/guests/db", "/datastores", "/datastores/t1", "/datastores/default",
         "/switches", "/switches/lan"]
GUEST_DATASTORE = {"web": "default", "db": "t1"}


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    root = tmp_path / "vm"
    (root / ".config").mkdir(parents=True)
    store = tmp_path / "t1"
    store.mkdir()
    (root / ".config" / "system.conf").write_text(f'datastore_list="t1"\npath_t1="{store}"\n')
    for name, where in (("web", root), ("db", store)):
        (where / name).mkdir()
        (where / name / f"{name}.conf").write_text('loader="uefi"\n')
    return root


def inherits(grant_path: str, target: str) -> bool:
    """The independent rule: prefix of the target, or of the target guest's datastore path."""
    def below(path: str, top: str) -> bool:
        return top == "/" or path == top or path.startswith(top + "/")

    if below(target, grant_path):
        return True
    if target.startswith("/guests/"):
        return below(f"/datastores/{GUEST_DATASTORE[target.split('/')[2]]}", grant_path)
    return False


def test_no_grant_no_role_and_root_is_admin_everywhere(vm: Path) -> None:
    for path in PATHS:
        assert policy.role_on(vm, NOBODY, path) is None
        assert policy.role_on(vm, Principal.for_uid(0), path) == "admin"
        with pytest.raises(Forbidden) as refused:
            policy.authorize(vm, NOBODY, "viewer", path)
        assert refused.value.code == "forbidden" and path in str(refused.value)


@pytest.mark.parametrize("subject", ["nobody", "@nogroup"])
def test_inheritance_table_roles_by_paths(vm: Path, subject: str) -> None:
    """Every role granted on every path, to the user and to its group, checked on every path for every role."""
    checked = 0
    for granted, grant_path in itertools.product(ROLES, PATHS):
        (vm / ".config" / acl.FILE_NAME).unlink(missing_ok=True)
        acl.add(vm, acl.make_grant(granted, grant_path, subject))
        for target, needed in itertools.product(PATHS, ROLES):
            allowed = inherits(grant_path, target) and ROLES.index(granted) >= ROLES.index(needed)
            if allowed:
                policy.authorize(vm, NOBODY, needed, target)
            else:
                with pytest.raises(Forbidden):
                    policy.authorize(vm, NOBODY, needed, target)
            checked += 1
    assert checked == 3 * len(PATHS) * len(PATHS) * 3


def test_a_more_specific_grant_replaces_the_inherited_one(vm: Path) -> None:
    acl.add(vm, acl.make_grant("admin", "/", "nobody"))
    acl.add(vm, acl.make_grant("viewer", "/guests/web", "nobody"))
    assert policy.role_on(vm, NOBODY, "/guests/web") == "viewer"
    assert policy.role_on(vm, NOBODY, "/guests/db") == "admin"
    assert policy.role_on(vm, NOBODY, "/switches/lan") == "admin"


def test_user_grants_replace_group_grants_at_the_same_level(vm: Path) -> None:
    acl.add(vm, acl.make_grant("admin", "/guests", "@nogroup"))
    acl.add(vm, acl.make_grant("viewer", "/guests", "nobody"))
    assert policy.role_on(vm, NOBODY, "/guests/web") == "viewer"
    acl.add(vm, acl.make_grant("operator", "/guests/web", "@nogroup"))  # more specific: the group's counts
    assert policy.role_on(vm, NOBODY, "/guests/web") == "operator"
    acl.add(vm, acl.make_grant("operator", "/", "@wheel-nonexistent"))  # a group nobody is not in: ignored
    assert policy.role_on(vm, NOBODY, "/switches") is None


def test_owner_and_group_keys_imply_operator_on_that_guest_only(vm: Path) -> None:
    (vm / "web" / "web.conf").write_text('loader="uefi"\nowner="nobody"\n')
    (vm.parent / "t1" / "db" / "db.conf").write_text('loader="uefi"\ngroup="nogroup"\n')
    assert policy.role_on(vm, NOBODY, "/guests/web") == "operator"
    assert policy.role_on(vm, NOBODY, "/guests/db") == "operator"
    with pytest.raises(Forbidden):
        policy.authorize(vm, NOBODY, "admin", "/guests/web")
    assert policy.role_on(vm, NOBODY, "/guests") is None
    acl.add(vm, acl.make_grant("admin", "/guests/web", "nobody"))  # the key adds, it never narrows
    assert policy.role_on(vm, NOBODY, "/guests/web") == "admin"
    (vm / "web" / "web.conf").write_text('loader="uefi"\nowner="root"\n')
    (vm.parent / "t1" / "db" / "db.conf").write_text('loader="uefi"\ngroup="root"\n')
    assert policy.role_on(vm, NOBODY, "/guests/db") is None


def test_an_unrestricted_token_holds_its_owner_rights_and_no_more(vm: Path) -> None:
    acl.add(vm, acl.make_grant("operator", "/guests", "nobody"))
    token, bearer = tokens.create(vm, 65534)
    principal = tokens.authenticate(vm, bearer)
    assert [policy.role_on(vm, principal, p) for p in ("/guests/web", "/", "/switches")] == ["operator", None, None]
    tokens.revoke(vm, token.id)
    assert policy.role_on(vm, principal, "/guests/web") is None  # revoked after authentication


def test_a_restricted_token_holds_the_lower_of_its_own_and_its_owner_rights(vm: Path) -> None:
    acl.add(vm, acl.make_grant("operator", "/guests", "nobody"))
    _token, bearer = tokens.create(vm, 65534, role="admin", path="/")  # asks for more than the owner has
    principal = tokens.authenticate(vm, bearer)
    assert policy.role_on(vm, principal, "/guests/web") == "operator"
    assert policy.role_on(vm, principal, "/switches/lan") is None
    viewer, bearer2 = tokens.create(vm, 65534, role="viewer", path="/guests/web")
    narrow = tokens.authenticate(vm, bearer2)
    assert [policy.role_on(vm, narrow, p) for p in ("/guests/web", "/guests/db")] == ["viewer", None]
    acl.add(vm, acl.make_grant("operator", "/guests/db", f"token:{viewer.id}"))
    assert policy.role_on(vm, narrow, "/guests/db") == "operator"
    root_token = tokens.authenticate(vm, tokens.create(vm, 0, role="viewer", path="/")[1])
    assert policy.role_on(vm, root_token, "/guests/web") == "viewer"  # even root's token is capped by its own


def test_a_token_expired_after_authentication_holds_nothing(vm: Path) -> None:
    acl.add(vm, acl.make_grant("admin", "/", "nobody"))
    _, bearer = tokens.create(vm, 65534, expires="1m")
    principal = tokens.authenticate(vm, bearer)
    assert policy.role_on(vm, principal, "/") == "admin"
    path = tokens.tokens_path(vm)
    path.write_text(path.read_text().replace('"expires": ', '"expires": 1, "x": '))
    assert policy.role_on(vm, principal, "/") is None


@pytest.mark.parametrize("line, key", [("admin / nobody extra", "grant"), ("root / nobody", "role"),
                                       ("viewer /vms nobody", "path"), ("viewer /guests/a/b nobody", "path"),
                                       ("viewer / -rf", "subject"), ("viewer / token:xyz", "subject"),
                                       ("viewer /guests/.. nobody", "path")])
def test_a_malformed_acl_line_is_an_error_naming_file_and_line(vm: Path, line: str, key: str) -> None:
    (vm / ".config" / acl.FILE_NAME).write_text(f"# comment\nviewer / nobody\n{line}\n")
    with pytest.raises(ConfigError) as refused:
        policy.role_on(vm, NOBODY, "/")
    assert f"acl.conf:3: {key}=" in str(refused.value)


def test_acl_file_is_private_and_edits_refuse_duplicates_and_unknowns(vm: Path) -> None:
    grant = acl.make_grant("viewer", "/guests/web", "@nogroup")
    acl.add(vm, grant)
    assert (vm / ".config" / acl.FILE_NAME).stat().st_mode & 0o777 == 0o600
    with pytest.raises(Exception, match="granted already"):
        acl.add(vm, grant)
    acl.remove(vm, grant)
    with pytest.raises(Exception, match="no grant"):
        acl.remove(vm, grant)
