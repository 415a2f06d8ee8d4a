"""``routes.sync`` encodes the envelope before it decides to redact (hivectl/daemon/routes.py): its bytes
must be exactly what Starlette's ``JSONResponse`` writes for the redacted value, secret or not."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the daemon extra is not installed")

from fastapi.responses import JSONResponse

from hivectl.daemon.routes import redact_result, sync

VALUES: list[Any] = [
    [],
    [{"name": "web1", "cpu": "2", "vnc": None, "auto": False, "tags": ["a", "b"], "pid": 4242}],
    {"name": "é\u2603 \"quoted\" back\\slash\nnewline\t", "n": 1.5, "big": 10**20, "t": ("x", 1)},
    {"vnc_password": "hunter2", "cpu": "1"},  # a secret key
    'loader="grub"\nvnc_password="hunter2"\ncpu=1\n',  # a config text with one
    [{"keys": {"graphics": "yes", "vnc_password": "s3cret"}}],
    {"note": "the key vnc_password is named but has no value here"},
]


@pytest.mark.parametrize("value", VALUES)
def test_sync_writes_what_jsonresponse_writes_for_the_redacted_value(value: Any) -> None:
    expected = JSONResponse({"type": "sync", "status": "Success", "status_code": 200,
                             "metadata": redact_result(value)})
    got = sync(value)
    assert got.body == expected.body
    assert got.headers["content-type"] == expected.headers["content-type"] == "application/json"
    assert got.status_code == 200
    assert b"hunter2" not in got.body and b"s3cret" not in got.body
