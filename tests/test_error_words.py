"""The one line and the one code of an error, shared by the daemon's envelope and a remote's answers
(hivectl/errors.py ``error_line``/``error_code``), and a peer's JSON line (hivectl/jsonline.py)."""

from __future__ import annotations

import pytest

from hivectl.errors import ConfigError, Conflict, HivectlError, NotFound, UsageError, ValidationErrors
from hivectl.jsonline import json_object
from hivectl.remote import wire

ERRORS: list[BaseException] = [
    NotFound("web: no such guest"), Conflict("web is Running (42)"),
    ConfigError("/vm/web/web.conf", "cpu", "x", "a number"),
    ValidationErrors(["a", "b"]), UsageError("start: no name"), HivectlError("zfs failed"),
    FileNotFoundError(2, "No such file or directory", "/vm/x"), PermissionError(13, "Permission denied", "/vm/y"),
    KeyError("bug"),
]


def test_the_daemon_and_a_remote_give_an_error_the_same_code_and_line() -> None:
    envelope = pytest.importorskip("hivectl.daemon.envelope", reason="the daemon extra is not installed")
    for error in ERRORS:
        _, code = envelope.classify(error)
        body = wire.error_object(error)
        assert (body["code"], body["message"]) == (code, envelope.message(error)), error
    assert [wire.code_of(e) for e in ERRORS] == ["not_found", "conflict", "invalid", "invalid", "usage", "failed",
                                                 "not_found", "failed", "internal"]
    assert wire.error_object(KeyError("secret detail"))["message"] == "internal error: KeyError"
    assert envelope.classify(KeyError("x")) == (500, "internal")


def test_an_own_code_is_kept_by_a_remote_and_by_the_daemon_only_where_it_has_a_status() -> None:
    envelope = pytest.importorskip("hivectl.daemon.envelope", reason="the daemon extra is not installed")
    unreachable = wire.RemoteUnreachable("dr", "unreachable", "ssh: connect refused")
    assert wire.code_of(unreachable) == "unreachable"
    assert envelope.classify(unreachable) == (400, "failed")  # no HTTP status of its own: a failure
    from hivectl.auth.errors import Forbidden

    assert envelope.classify(Forbidden("no")) == (403, "forbidden") and wire.code_of(Forbidden("no")) == "forbidden"


class PeerError(HivectlError):
    pass


def test_a_peer_line_must_be_one_json_object() -> None:
    assert json_object(b'{"return": {}}\n', PeerError, "QEMU sent") == {"return": {}}
    with pytest.raises(PeerError, match=r"^QEMU sent something that is not JSON: b'\{oops'$"):
        json_object(b"{oops", PeerError, "QEMU sent")
    with pytest.raises(PeerError, match=r"^the other host answered \[1, 2\], not an object$"):
        json_object("[1, 2]", PeerError, "the other host answered")
    long = b"x" * 500
    with pytest.raises(PeerError) as raised:
        json_object(long, PeerError, "it sent")
    assert len(str(raised.value)) < 250, "at most 200 bytes of what came"
