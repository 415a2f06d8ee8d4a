"""hivectld over a ZFS vm_dir (``zfs:zroot/vm``) finds tokens, grants and logs where the CLI keeps them.

vm_dir's ``.config`` is in the dataset's mountpoint (``Store.root``), not in a directory named after the
``zfs:`` spec: a daemon that read ``zfs:zroot/vm/.config`` refused every token the CLI had made, and wrote
its refusals nowhere the ``audit`` command reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import hivectl
from tests.daemon.conftest import Daemon, start_daemon, stop_daemon
from tests.storage.zfsfixture import ZfsVm, zfsvm  # noqa: F401


@pytest.fixture
def zfs_daemon(zfsvm: ZfsVm, short_dir: Path) -> Iterator[Daemon]:  # noqa: F811
    started = start_daemon(Path("zfs:zroot/vm"), short_dir / "d.sock")
    try:
        yield started
    finally:
        stop_daemon(started)


def test_a_cli_token_works_against_a_daemon_on_a_zfs_vm_dir(zfsvm: ZfsVm, zfs_daemon: Daemon) -> None:  # noqa: F811
    assert hivectl("create", "-s", "1M", "web").status == 0
    made = hivectl("token", "create", "--role", "viewer", "--json")
    assert made.status == 0, made.err
    bearer = {"Authorization": f"Bearer {made.json()['token']}"}
    listed = zfs_daemon.get("/1.0/guests", headers=bearer)
    assert listed.status_code == 200, listed.text
    assert [row["name"] for row in listed.json()["metadata"]] == ["web"]
    refused = zfs_daemon.post("/1.0/guests/web/start", headers=bearer, json={})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden", refused.text
    lines = [json.loads(line) for line in (zfsvm.root / ".config" / "audit.jsonl").read_text().splitlines()]
    assert any(line.get("result") == "refused" and line.get("operation") == "start" for line in lines), lines
