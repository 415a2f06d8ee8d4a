"""Replication jobs through the CLI, between two vm_dirs of the simulated host (``local:zfs:tank/vm``),
time driven with ``--run-due --now`` instead of waited for.

The Done-means test: a job every minute whose run is killed (SIGKILL of ``hivectl replicate --run-due``)
halfway through its disk's stream; the next minute's run resumes from the receive's token and re-sends
under 1% of what had arrived; later runs go on incrementally and prune both sides by the job's policy;
the copy refuses ``start`` and ``promote`` boots it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

from tests.cli_helpers import HIVECTL, hivectl
from tests.replicate.conftest import Pair
from tests.replicate.test_transfer import MIB, arrived, make_guest, stream_size

T0 = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
TARGET = "local:zfs:tank/vm"


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def snaps(pair: Pair, dataset: str) -> list[str]:
    return sorted(n.split("@", 1)[1] for n in pair.host.datasets() if n.startswith(f"{dataset}@"))


def status(pair: Pair, minutes: int) -> dict[str, object]:
    shown = hivectl("replicate", "status", "--json", "--now", at(minutes))
    assert shown.status == 0, shown.err
    rows: list[dict[str, object]] = json.loads(shown.out)
    assert len(rows) == 1
    return rows[0]


def test_a_job_killed_halfway_resumes_prunes_and_promotes(pair: Pair) -> None:
    make_guest(pair, 12 * MIB)
    added = hivectl("replicate", "web", TARGET, "--every", "1m", "--keep", "keep-last=2")
    assert added.status == 0, added.err
    assert hivectl("replicate", "list").out.split()[-4:] == ["web", TARGET, "1m", "keep-last=2"]

    # minute 0: the run is killed while the disk's stream is halfway through
    env = dict(os.environ)
    run = subprocess.Popen([*HIVECTL, "replicate", "--run-due", "--now", at(0)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = pair.host.root / ".zfs-recv" / "tank%vm%web%disk0.partial"  # the receive's saved state
    full = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if full is None and "zroot/vm/web/disk0@repl-20261203T150000Z" in pair.host.datasets():
            full = stream_size(pair, "zroot/vm/web/disk0@repl-20261203T150000Z")
        if full is not None and partial.exists() and partial.stat().st_size > full // 2:
            os.kill(run.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL, "the run ended before it could be killed halfway"
    assert full is not None
    time.sleep(0.5)  # the orphaned zfs recv sees the end of its input and saves what it has
    had = arrived(pair, "tank/vm/web/disk0")
    assert full // 2 < had < full
    assert snaps(pair, "zroot/vm/web") == ["repl-20261203T150000Z"]

    # minute 1: the same snapshot is resumed, not a new one taken and sent whole
    again = hivectl("replicate", "--run-due", "--json", "--now", at(1), timeout=600)
    assert again.status == 0, again.err
    [result] = json.loads(again.out)
    assert [(s["dataset"], s["kind"]) for s in result["sent"]] == [("/disk0", "resume")], result
    resent = result["bytes"] + had - full
    assert 0 <= resent < had / 100, f"re-sent {resent} bytes of the {had} that had arrived"
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()
    shown = status(pair, 1)
    assert shown["snapshot"] == "repl-20261203T150000Z" and shown["failures"] == 0
    assert shown["recovery_point_age"] == 60.0 and shown["bytes_last"] == result["bytes"]

    # not due again within the minute; then three more minutes of runs, each one incremental step
    assert json.loads(hivectl("replicate", "--run-due", "--json", "--now", at(1)).out) == []
    with open(pair.zvol("zroot/vm/web/disk0"), "r+b") as disk:
        disk.seek(40 * MIB)
        disk.write(b"written after the first run")
    for minute in (2, 3, 4):
        done = hivectl("replicate", "--run-due", "--json", "--now", at(minute), timeout=600)
        assert done.status == 0, done.err
        assert [s["kind"] for s in json.loads(done.out)[0]["sent"]] == ["incremental", "incremental"]
    kept = ["repl-20261203T150300Z", "repl-20261203T150400Z"]
    for dataset in ("zroot/vm/web", "zroot/vm/web/disk0", "tank/vm/web", "tank/vm/web/disk0"):
        assert snaps(pair, dataset) == kept, dataset
    pending = pair.host.run(["zfs", "get", "-H", "-o", "value", "hivectl:replication", f"zroot/vm/web@{kept[-1]}"])
    assert pending.stdout.strip() == "-", "a replicated snapshot is still marked pending"
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()

    # the copy: listed on the DR side, refuses a plain start, and promote boots it
    assert "web" in pair.on_target("list").stdout
    refused = pair.on_target("start", "web")
    assert refused.returncode != 0 and "replica" in refused.stderr and "promote" in refused.stderr
    assert not pair.host.vm_exists("web")
    made = pair.on_target("switch", "create", "public")  # the DR host has the guest's switch
    assert made.returncode == 0, made.stderr
    promoted = pair.on_target("promote", "web")
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted at repl-20261203T150400Z" in promoted.stdout
    pair.host.wait_running("web", timeout=60)
    assert pair.host.run(["zfs", "holds", "-H", f"tank/vm/web@{kept[-1]}"]).stdout == ""
    assert pair.on_target("stop", "web").returncode == 0


def test_the_daemons_scheduler_runs_due_jobs_and_records_them(pair: Pair) -> None:
    """hivectld's thread (hivectl/replicate/scheduler.py, started in the daemon's lifespan) runs a due job
    as cron's --run-due would: the copy appears and the status records the success."""
    from hivectl.replicate.scheduler import running

    make_guest(pair, MIB)
    assert hivectl("replicate", "web", TARGET, "--every", "1m", "--keep", "keep-last=2").status == 0
    with running(None, None, interval=0.2) as scheduler:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "tank/vm/web/disk0" not in pair.host.datasets():
            time.sleep(0.2)
        while time.monotonic() < deadline and not json.loads(hivectl("replicate", "status", "--json").out)[0][
                "last_success"]:
            time.sleep(0.2)
    assert scheduler.ticks >= 1
    shown = json.loads(hivectl("replicate", "status", "--json").out)[0]
    assert shown["failures"] == 0 and shown["snapshot"].startswith("repl-"), shown
    assert pair.zvol("tank/vm/web/disk0").read_bytes() == pair.zvol("zroot/vm/web/disk0").read_bytes()


def test_promote_refuses_while_the_source_runs_the_guest(pair: Pair) -> None:
    make_guest(pair, MIB)
    assert hivectl("replicate", "web", TARGET, "--every", "1h", "--keep", "keep-last=1").status == 0
    ran = hivectl("replicate", "run", "web", "--json", "--now", at(0), timeout=600)
    assert ran.status == 0, ran.err
    assert hivectl("switch", "create", "public").status == 0
    started = hivectl("start", "web")
    assert started.status == 0, started.err
    try:
        refused = pair.on_target("promote", "web")
        assert refused.returncode == 1, refused
        last = refused.stderr.strip().splitlines()[-1]
        assert last.endswith(f"web still runs on {socket.gethostname()}: stop it there first, or use --force"), last
        assert pair.on_target("list").stdout.split()[-2] == "Stopped"
    finally:
        hivectl("stop", "web")
    planned = pair.on_target("promote", "web", "--dry-run")
    assert planned.returncode == 0 and planned.stdout == "", planned
    assert "replica" in pair.on_target("start", "web").stderr, "a dry run promoted the copy"
