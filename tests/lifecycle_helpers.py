"""Shared pieces of the lifecycle tests on the simulated FreeBSD host: the ``host`` fixture (exported by
tests/conftest.py) and small helpers that read the host's state."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hivectl.rcfile import RcFile
from tests.cli_helpers import hivectl


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def host(simhost: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    rc = tmp_path / "rc.conf"
    rc.write_text("")
    monkeypatch.setenv("HIVECTL_VM_DIR", str(vm_dir))
    monkeypatch.setenv("HIVECTL_RC_CONF", str(rc))
    assert hivectl("init").status == 0
    result = hivectl("switch", "create", "public")
    assert result.status == 0, result.err
    simhost.vm_dir = vm_dir
    simhost.rc = rc
    return simhost


def make_guest(host: Any, name: str = "g1", template: str = "default", **keys: str) -> Path:
    result = hivectl("create", "-t", template, "-s", "1G", name)
    assert result.status == 0, result.err
    conf = RcFile.load(host.vm_dir / name / f"{name}.conf")
    for key, value in keys.items():
        conf.set(key, value)
    conf.save()
    return host.vm_dir / name


def state_of(name: str) -> dict[str, Any]:
    rows = {r["name"]: r for r in hivectl("list", "--json").json()}
    return rows[name]


def bhyve_pid(host: Any, name: str) -> int | None:
    record = host.running().get(name)
    return int(record["pid"]) if record else None


def taps(host: Any) -> list[str]:
    return sorted(n for n, i in host.interfaces().items() if n.startswith("tap"))
