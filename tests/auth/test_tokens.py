"""Bearer tokens on real files: hashed on disk, 0600, expiry, revocation, no secret in any message."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hivectl.auth import acl, tokens
from hivectl.auth.errors import Unauthorized
from hivectl.errors import ConfigError, HivectlError

NOBODY = 65534


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    (tmp_path / ".config").mkdir()
    return tmp_path


def test_the_secret_is_stored_nowhere_only_its_hash(vm: Path) -> None:
    token, bearer = tokens.create(vm, NOBODY)
    secret = bearer.split(".")[2]
    raw = tokens.tokens_path(vm).read_bytes()
    assert secret.encode() not in raw and bearer.encode() not in raw
    assert len(secret) == 43  # 32 random bytes, base64url
    record = json.loads(raw)["tokens"][0]
    assert record["id"] == token.id and len(record["sha256"]) == 64
    assert stat.S_IMODE(os.stat(tokens.tokens_path(vm)).st_mode) == 0o600
    principal = tokens.authenticate(vm, bearer)
    assert (principal.uid, principal.token_id, principal.name) == (NOBODY, token.id, "nobody")


def test_two_tokens_differ_and_each_authenticates_only_itself(vm: Path) -> None:
    first, bearer1 = tokens.create(vm, NOBODY)
    second, bearer2 = tokens.create(vm, 0)
    assert first.id != second.id and bearer1 != bearer2
    assert tokens.authenticate(vm, bearer2).uid == 0
    forged = f"hvt.{first.id}.{bearer2.split('.')[2]}"  # a real secret under another token's id
    with pytest.raises(Unauthorized) as refused:
        tokens.authenticate(vm, forged)
    assert bearer2.split(".")[2] not in str(refused.value)


@pytest.mark.parametrize("bearer", ["", "hvt", "Bearer x", "hvt.0123456789ab.short",
                                    "hvt.0123456789ab." + "A" * 43, "hvt.ZZZZ." + "A" * 43])
def test_malformed_or_unknown_bearers_are_refused_without_echo(vm: Path, bearer: str) -> None:
    tokens.create(vm, NOBODY)
    with pytest.raises(Unauthorized) as refused:
        tokens.authenticate(vm, bearer)
    assert refused.value.code == "unauthorized"
    if len(bearer) > 20:
        assert bearer.split(".")[-1] not in str(refused.value)


def test_expiry(vm: Path) -> None:
    token, bearer = tokens.create(vm, NOBODY, expires="1h", now=1_000_000)
    assert token.expires == 1_000_000 + 3600
    assert tokens.authenticate(vm, bearer, now=1_000_000 + 3599).token_id == token.id
    with pytest.raises(Unauthorized, match="expired"):
        tokens.authenticate(vm, bearer, now=1_000_000 + 3600)
    forever, bearer2 = tokens.create(vm, NOBODY, expires="never")
    assert forever.expires is None and tokens.authenticate(vm, bearer2, now=4e9).uid == NOBODY


@pytest.mark.parametrize("value", ["", "0d", "30", "30s", "1y", "99999999d", "-1d", "3651d"])
def test_bad_lifetimes_name_the_option(vm: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="--expires"):
        tokens.create(vm, NOBODY, expires=value)
    assert tokens.load(vm) == []


def test_revoke_refuses_the_bearer_and_drops_its_grants(vm: Path) -> None:
    token, bearer = tokens.create(vm, NOBODY, role="viewer", path="/guests")
    kept, bearer2 = tokens.create(vm, NOBODY)
    acl.add(vm, acl.make_grant("operator", "/guests/web", f"token:{token.id}"))
    acl.add(vm, acl.make_grant("viewer", "/", "nobody"))
    tokens.revoke(vm, token.id)
    with pytest.raises(Unauthorized):
        tokens.authenticate(vm, bearer)
    assert tokens.authenticate(vm, bearer2).token_id == kept.id
    assert [g.line() for g in acl.load(vm)] == ["viewer / nobody"]
    with pytest.raises(HivectlError, match="does not exist"):
        tokens.revoke(vm, token.id)


def test_a_token_of_a_deleted_user_is_refused(vm: Path) -> None:
    _, bearer = tokens.create(vm, 4_000_000_000)  # no such uid
    with pytest.raises(Unauthorized, match="no longer exists"):
        tokens.authenticate(vm, bearer)


def test_a_hand_edited_store_is_refused_not_half_trusted(vm: Path) -> None:
    _token, bearer = tokens.create(vm, NOBODY)
    path = tokens.tokens_path(vm)
    data = json.loads(path.read_text())
    data["tokens"][0]["role"] = "root"
    data["tokens"][0]["path"] = "/"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="root"):
        tokens.load(vm)
    with pytest.raises(Unauthorized, match="cannot be read"):
        tokens.authenticate(vm, bearer)


def test_path_without_role_is_a_usage_error(vm: Path) -> None:
    with pytest.raises(HivectlError, match="--path needs --role"):
        tokens.create(vm, NOBODY, path="/guests")
