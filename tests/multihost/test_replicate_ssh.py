"""Replication (docs/replication.md) between two simulated FreeBSD hosts over real ssh (issue 12, item 3).

Host ``prod`` and host ``dr`` each have a ZFS vm_dir (``zfs:zroot/vm`` on their own simulated pool) and
their own sshd; each knows the other as a remote (``hivectl remote add``). A job every minute on prod is
driven with ``--run-due --now`` (no sleeping); its first run is cut halfway through the disk's stream by
killing the ssh client that carries it; the next minute's run resumes from the receive's token on dr and
re-sends under 1% of what had arrived; ``replicate status --json`` shows the killed run's error, then the
recovery point. ``promote`` on dr asks prod over ssh, refuses while prod runs the guest, and with the
guest stopped there boots the replica (bhyve running on dr's simulated host).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.multihost.bed import Bed, NsHost, make_bed, netns_pids
from tests.simhost import zfs_resume

MIB = 1 << 20
T0 = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
FIRST = "repl-20261203T150000Z"


@pytest.fixture(scope="module")
def rbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with make_bed(tmp_path_factory.mktemp("rbed"), ["prod", "dr"], zfs=True) as bed:
        bed.connect_everyone()
        yield bed


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def zvol(host: NsHost, dataset: str) -> Path:
    assert host.sim is not None
    return host.sim.root / "dev" / "zvol" / dataset


def zfs(host: NsHost, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The host's own (simulated) zfs, with its environment."""
    return subprocess.run(["zfs", *args], env=host.env, capture_output=True, check=False, timeout=120)


def arrived(host: NsHost, dataset: str) -> int:
    token = zfs(host, "get", "-H", "-o", "value", "receive_resume_token", dataset).stdout.decode().strip()
    fields: dict[str, Any] | None = zfs_resume.read_token(token)
    assert fields is not None, f"no resume token on {host.name}'s {dataset}: {token!r}"
    return int(fields["bytes"])


def status(host: NsHost, minutes: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = host.ok("replicate", "status", "--json", "--now", at(minutes)).json()
    assert len(rows) == 1, rows
    return rows[0]


def kill_ssh(host: NsHost) -> int:
    """SIGKILL every ssh client in ``host``'s namespace (the control master and its sessions): the
    connection to the other host breaks mid-stream. Returns how many were killed."""
    killed = 0
    for pid in netns_pids(host.netns):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "ssh":
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def test_a_job_over_ssh_survives_a_cut_connection_and_promote_boots_the_replica(rbed: Bed) -> None:
    prod, dr = rbed["prod"], rbed["dr"]
    assert prod.sim is not None and dr.sim is not None
    prod.ok("create", "-t", "freebsd-zvol", "-s", "64M", "web")
    with open(zvol(prod, "zroot/vm/web/disk0"), "r+b") as disk:
        disk.write(os.urandom(12 * MIB))
    prod.ok("replicate", "web", "dr", "--every", "1m", "--keep", "keep-last=2")
    assert prod.ok("replicate", "list").out.split()[-4:] == ["web", "dr", "1m", "keep-last=2"]

    # minute 0: the ssh carrying the disk's stream is killed when half of it has arrived on dr
    run = subprocess.Popen(prod.nsenter([str(prod.command), "replicate", "--run-due", "--json", "--now", at(0)]),
                           env=prod.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = dr.sim.root / ".zfs-recv" / "zroot%vm%web%disk0.partial"  # dr's receive's saved state
    full = None
    killed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if full is None and f"zroot/vm/web/disk0@{FIRST}" in prod.sim.datasets():
            full = len(zfs(prod, "send", f"zroot/vm/web/disk0@{FIRST}").stdout)
        if full is not None and partial.exists() and partial.stat().st_size > full // 2:
            killed = kill_ssh(prod)
            break
        time.sleep(0.01)
    out, err = run.communicate(timeout=120)
    assert killed, f"the run ended before its stream could be cut: {err.decode()}"
    assert full is not None
    assert out, f"the killed run printed nothing (exit {run.returncode}): {err.decode()}"
    [cut] = json.loads(out)
    assert run.returncode == 1 and cut["error"].startswith("dr: ") and "connection broke" in cut["error"], cut
    time.sleep(0.5)  # dr's zfs recv sees the end of its input and saves what it has
    had = arrived(dr, "zroot/vm/web/disk0")
    assert full // 2 < had < full, (had, full)
    shown = status(prod, 0)
    assert shown["failures"] == 1 and shown["last_error"] == cut["error"] and shown["snapshot"] is None, shown

    # minute 1: the same snapshot is resumed over a new connection, not sent whole again
    again = prod.ok("replicate", "--run-due", "--json", "--now", at(1), timeout=600)
    [result] = json.loads(again.out)
    assert result["error"] is None, result
    assert [(s["dataset"], s["kind"]) for s in result["sent"]] == [("/disk0", "resume")], result
    resent = result["bytes"] + had - full
    assert 0 <= resent < had / 100, f"re-sent {resent} bytes of the {had} that had arrived"
    assert zvol(dr, "zroot/vm/web/disk0").read_bytes() == zvol(prod, "zroot/vm/web/disk0").read_bytes()
    shown = status(prod, 1)
    assert shown["snapshot"] == FIRST and shown["failures"] == 0 and shown["last_error"] is None, shown
    assert shown["recovery_point_age"] == 60.0 and shown["bytes_last"] == result["bytes"]

    # two more minutes, each one incremental step; the policy keeps two on both hosts
    with open(zvol(prod, "zroot/vm/web/disk0"), "r+b") as disk:
        disk.seek(40 * MIB)
        disk.write(b"written after the first run")
    for minute in (2, 3):
        done = prod.ok("replicate", "--run-due", "--json", "--now", at(minute), timeout=600)
        assert [s["kind"] for s in json.loads(done.out)[0]["sent"]] == ["incremental", "incremental"]
    kept = ["repl-20261203T150200Z", "repl-20261203T150300Z"]
    for host in (prod, dr):
        assert host.sim is not None
        snaps = sorted(n.split("@", 1)[1] for n in host.sim.datasets() if n.startswith("zroot/vm/web/disk0@"))
        assert snaps == kept, (host.name, snaps)
    assert zvol(dr, "zroot/vm/web/disk0").read_bytes() == zvol(prod, "zroot/vm/web/disk0").read_bytes()

    # promote on dr asks prod over ssh: refused while prod runs web, boots the replica once it is stopped
    prod.ok("switch", "create", "public")
    dr.ok("switch", "create", "public")
    prod.ok("start", "web")
    try:
        refused = dr.hivectl("promote", "web", "--source", "prod")
        assert refused.status == 1, refused
        assert refused.err.strip().splitlines()[-1].endswith("stop it there first, or use --force"), refused.err
        assert not dr.sim.vm_exists("web")
    finally:
        prod.ok("stop", "web")
    refused_start = dr.hivectl("start", "web")
    assert refused_start.status != 0 and "promote" in refused_start.err
    promoted = dr.ok("promote", "web", "--source", "prod")
    assert f"promoted at {kept[-1]}" in promoted.out, promoted.out
    dr.sim.wait_running("web", timeout=60)
    assert not prod.sim.vm_exists("web")
    dr.ok("stop", "web")
