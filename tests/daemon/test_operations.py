"""Background operations of a real hivectld: cancel while queued, cancel while running (rolled back), wait.

The host's ``zfs create`` is held at a gate (a wrapper that waits for a file, then runs the simulated
zfs) so that a create on a ZFS datastore is certainly still running when the test cancels it; the checks
are on the host's own state (the simulated pool's datasets, vm_dir), not on what the daemon says alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.cli_helpers import hivectl
from tests.daemon.conftest import Daemon, start_daemon, stop_daemon


def gated_zfs(where: Path, host: Any) -> dict[str, str]:
    """An environment whose ``zfs create`` touches ``where/entered``, then waits for ``where/gate``."""
    where.mkdir()
    wrapper = where / "zfs"
    wrapper.write_text(
        '#!/bin/sh\n'
        f'if [ "$1" = create ] && [ ! -e "{where}/gate" ]; then\n'
        f'    touch "{where}/entered"\n'
        f'    while [ ! -e "{where}/gate" ]; do sleep 0.05; done\n'
        'fi\n'
        f'exec "{host.bin / "zfs"}" "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{where}{os.pathsep}{os.environ['PATH']}"}


def wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def zfs_datastore(host: Any) -> None:
    assert host.run(["zfs", "create", "zroot/zvm"]).returncode == 0
    result = hivectl("datastore", "add", "tank", "zfs:zroot/zvm")
    assert result.status == 0, result.err


def datasets(host: Any) -> list[str]:
    return sorted(host.run(["zfs", "list", "-H", "-o", "name"]).stdout.split())


def operation(daemon: Daemon, location: str) -> dict[str, Any]:
    reply = daemon.get(location)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()["metadata"]
    return result


def test_cancel_running_and_queued_operations(host: Any, short_dir: Path) -> None:
    zfs_datastore(host)
    before = datasets(host)
    gate = short_dir / "gate"
    daemon = start_daemon(host.vm_dir, short_dir / "d.sock", "--workers", "1", env=gated_zfs(gate, host))
    try:
        first = daemon.post("/1.0/guests", json={"name": "z1", "size": "1G", "datastore": "tank"})
        second = daemon.post("/1.0/guests", json={"name": "z2", "size": "1G", "datastore": "tank"})
        assert first.status_code == second.status_code == 202, (first.text, second.text)
        running, queued = first.headers["location"], second.headers["location"]
        # The second waits for the only worker: cancelling it there means it never runs.
        assert operation(daemon, queued)["status"] == "Pending"
        cancelled = daemon.client.delete(queued)
        assert cancelled.status_code == 200, cancelled.text
        # The first is cancelled inside its first zfs command (so there is something to roll back).
        wait_for_file(gate / "entered")
        op = operation(daemon, running)
        progress = op["metadata"]["progress"]  # zfs commands that read come before the create
        assert op["status"] == "Running" and progress["command"] == "zfs" and progress["steps"] >= 1, op
        reply = daemon.get(f"{running}/wait", params={"timeout": 0.1})
        assert reply.json()["metadata"]["status"] == "Running"  # a wait that times out shows it as it is
        reply = daemon.client.delete(running)
        assert reply.status_code == 200 and reply.json()["metadata"]["status"] == "Cancelling", reply.text
        (gate / "gate").touch()
        op = daemon.wait_op(running, timeout=60)
        assert (op["status"], op["code"], op["status_code"]) == ("Cancelled", "cancelled", 401), op
        assert op["err"].startswith("cancelled before zfs"), op
        op = daemon.wait_op(queued)
        assert (op["status"], op["err"]) == ("Cancelled", "cancelled before it started"), op
        # Nothing of either guest is left: the first's applied steps were rolled back.
        assert datasets(host) == before
        assert [r["name"] for r in hivectl("list", "--json").json()] == []
        # A finished operation cannot be cancelled again.
        again = daemon.client.delete(running)
        assert again.status_code == 409 and again.json()["code"] == "conflict", again.text
    finally:
        stop_daemon(daemon)


def test_an_operation_that_runs_to_the_end_reports_its_steps(host: Any, short_dir: Path) -> None:
    zfs_datastore(host)
    daemon = start_daemon(host.vm_dir, short_dir / "d.sock")
    try:
        reply = daemon.post("/1.0/guests", json={"name": "z3", "size": "1G", "datastore": "tank"})
        op = daemon.wait_op(reply.headers["location"], timeout=60)
        assert op["status"] == "Success" and op["metadata"]["progress"]["steps"] >= 2, op
        assert "zroot/zvm/z3" in datasets(host)
        assert [r["name"] for r in hivectl("list", "--json").json()] == ["z3"]
    finally:
        stop_daemon(daemon)
