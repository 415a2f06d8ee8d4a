"""``hivectl token`` and ``hivectl acl`` through the real command line, and the sudo/doas check.

The delegation tests run hivectl as root with ``SUDO_UID``/``DOAS_USER`` set, which is what sudo and doas
hand it; tests/auth/test_sudo.py does the same through a real sudo with a real non-root user.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.cli_helpers import hivectl

NOBODY = {"SUDO_UID": "65534"}


def test_token_lifecycle_and_the_secret_is_shown_once(vmdir: Path) -> None:
    made = hivectl("token", "create", "--role", "viewer", "--path", "/guests", "--expires", "2h", "--json")
    assert made.status == 0, made.err
    secret = made.json()["token"]
    token_id = made.json()["id"]
    listing = hivectl("token", "list")
    as_json = hivectl("token", "list", "--json")
    assert token_id in listing.out and "viewer" in listing.out and "/guests" in listing.out
    assert secret not in listing.out + listing.err + as_json.out
    assert secret.split(".")[2] not in (vmdir / ".config" / "tokens.json").read_text()
    assert stat.S_IMODE(os.stat(vmdir / ".config" / "tokens.json").st_mode) == 0o600
    plain = hivectl("token", "create")
    assert plain.status == 0 and plain.out.startswith("hvt.") and "secret is shown only now" in plain.err
    assert hivectl("token", "revoke", token_id).status == 0
    again = hivectl("token", "revoke", token_id)
    assert again.status == 1 and "does not exist" in again.err
    assert token_id not in hivectl("token", "list").out


def test_acl_grant_list_revoke_and_errors_name_the_value(vmdir: Path) -> None:
    assert hivectl("acl", "grant", "operator", "/guests/web", "@nogroup").status == 0
    assert hivectl("acl", "grant", "viewer", "/", "nobody").status == 0
    rows = hivectl("acl", "list", "--json").json()
    assert rows == [{"role": "operator", "path": "/guests/web", "subject": "@nogroup"},
                    {"role": "viewer", "path": "/", "subject": "nobody"}]
    bad = hivectl("acl", "grant", "superuser", "/", "nobody")
    assert bad.status == 1 and "role='superuser'" in bad.err
    bad = hivectl("acl", "grant", "viewer", "/vms/web", "nobody")
    assert bad.status == 1 and "path='/vms/web'" in bad.err
    assert hivectl("acl", "revoke", "viewer", "/", "nobody").status == 0
    assert "nobody" not in hivectl("acl", "list").out


def test_a_grant_to_an_unrestricted_token_is_refused(vmdir: Path) -> None:
    token_id = hivectl("token", "create", "--json").json()["id"]
    refused = hivectl("acl", "grant", "viewer", "/", f"token:{token_id}")
    assert refused.status == 1 and "without --role" in refused.err


def test_under_sudo_an_operator_may_do_exactly_the_operator_commands(vmdir: Path) -> None:
    assert hivectl("create", "web").status == 0
    assert hivectl("create", "db").status == 0
    assert hivectl("acl", "grant", "operator", "/guests/web", "nobody").status == 0
    allowed = hivectl("stop", "web", env=NOBODY)  # allowed: then refused for its own reason
    assert allowed.status == 1 and "not running" in allowed.err and "needs" not in allowed.err
    planned = hivectl("start", "--dry-run", "web", env=NOBODY)  # past the check: the plan finds no switch
    assert "no such switch" in planned.err and "needs" not in planned.err
    for argv in (["stop", "db"], ["start", "web", "db"], ["destroy", "web"], ["acl", "grant", "admin", "/", "nobody"],
                 ["token", "create", "--user", "root"], ["set", "vm_delay=1"], ["snapshot", "db@x"]):
        refused = hivectl(*argv, env=NOBODY)
        assert refused.status == 1 and "needs the" in refused.err, (argv, refused.err)
    assert (vmdir / "web" / "web.conf").exists()
    assert [g["subject"] for g in hivectl("acl", "list", "--json").json()] == ["nobody"]


def test_under_doas_the_owner_key_makes_an_operator(vmdir: Path) -> None:
    assert hivectl("create", "web").status == 0
    env = {"DOAS_USER": "nobody"}
    assert "needs the operator role on /guests/web" in hivectl("stop", "web", env=env).err
    with open(vmdir / "web" / "web.conf", "a") as conf:
        conf.write('owner="nobody"\n')
    assert "not running" in hivectl("stop", "web", env=env).err
    assert "needs the admin role on /" in hivectl("destroy", "web", env=env).err


@pytest.mark.parametrize("env, message", [({"SUDO_UID": "abc"}, "is not a uid"),
                                          ({"DOAS_USER": "no-such-user-x"}, "is not a user")])
def test_unreadable_delegation_is_refused(vmdir: Path, env: dict[str, str], message: str) -> None:
    refused = hivectl("list", env=env)
    assert refused.status == 1 and message in refused.err


def test_sudo_by_root_is_root(vmdir: Path) -> None:
    assert hivectl("create", "web", env={"SUDO_UID": "0"}).status == 0


def test_what_a_delegated_command_needs_comes_from_the_catalog() -> None:
    from argparse import Namespace

    from hivectl.cli.delegation import needs

    assert needs("start", Namespace(names=["a", "b"])) == [("operator", "/guests/a"), ("operator", "/guests/b")]
    assert needs("snapshot", Namespace(spec="a@x")) == [("operator", "/guests/a")]
    assert needs("restart", Namespace(name="a")) == [("operator", "/guests/a")]
    assert needs("rollback", Namespace(spec="a@x")) == [("admin", "/guests/a")]
    assert needs("switch", Namespace(action="create", name="lan")) == [("admin", "/switches/lan")]
    assert needs("stopall", Namespace()) == [("admin", "/")]
    assert needs("list", Namespace()) == [("admin", "/")]  # not placed by the catalog: the most it could need
    assert needs("start", Namespace(names=[])) == [("admin", "/")]


def _audit(vmdir: Path) -> list[dict]:
    import json

    path = vmdir / ".config" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_refusal_of_a_delegated_command_is_one_audit_line(vmdir: Path) -> None:
    assert hivectl("create", "web").status == 0
    assert hivectl("acl", "grant", "operator", "/guests/web", "nobody").status == 0
    cases = [  # argv, env, operation, target, what the message says
        (["start", "web", "db"], NOBODY, "start", ["/guests/web", "/guests/db"], "operator role on /guests/db"),
        (["destroy", "web"], NOBODY, "destroy", ["/guests/web"], "needs the admin role on /guests/web"),
        (["start", "--dry-run", "db"], NOBODY, "start", ["/guests/db"], "needs the operator role"),
        (["list"], NOBODY, "list", ["/"], "needs the admin role on /"),  # a read, refused: recorded too
        (["snapshot", "db@x"], {"DOAS_USER": "nobody"}, "snapshot", ["/guests/db"], "needs the operator role"),
        (["stop", "web"], {"SUDO_UID": "abc"}, "stop", ["/guests/web"], "SUDO_UID='abc' is not a uid"),
    ]
    for argv, env, operation, target, says in cases:
        before = len(_audit(vmdir))
        refused = hivectl(*argv, env=env)
        assert refused.status == 1 and says in refused.err, (argv, refused.err)
        new = _audit(vmdir)[before:]
        assert len(new) == 1, (argv, new)
        line = new[0]
        assert (line["operation"], line["target"], line["result"]) == (operation, target, "refused"), (argv, line)
        assert refused.err == f"hivectl: {line['message']}\n", "the one line the CLI printed"
        assert line["who"]["uid"] == 0
        if env.get("SUDO_UID", "0").isdigit():
            assert line["who"]["invoker"] == {"uid": 65534, "user": "nobody"}, line["who"]
        else:
            assert "invoker" not in line["who"]  # who ran sudo could not be told: the message says why
    # An allowed delegated command still writes its own one line, with its own result.
    before = len(_audit(vmdir))
    allowed = hivectl("stop", "web", env=NOBODY)
    assert allowed.status == 1 and "not running" in allowed.err
    assert [(x["operation"], x["result"]) for x in _audit(vmdir)[before:]] == [("stop", "error")]


def test_a_refusal_inside_an_api_change_is_recorded_as_refused(vmdir: Path) -> None:
    from hivectl.api import Hivectl
    from hivectl.auth.errors import Forbidden
    from hivectl.auth.principal import Principal

    before = len(_audit(vmdir))
    with pytest.raises(Forbidden, match="needs the admin role on / to make a token for root"):
        Hivectl(principal=Principal.for_uid(65534)).token_create(user="root")
    new = _audit(vmdir)[before:]
    assert [(x["operation"], x["result"], x["who"]) for x in new] == \
        [("token_create", "refused", {"uid": 65534, "user": "nobody"})], new
    assert "needs the admin role" in new[0]["message"]
