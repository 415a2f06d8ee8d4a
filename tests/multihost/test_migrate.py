"""``hivectl migrate`` between two simulated FreeBSD hosts (tests/multihost/migrate_bed.py).

Real processes all the way: the command line on the source, its ``_stream`` sub-commands on the target
through the same pipes ssh would carry, the simulated host's bhyve stand-ins for running guests. What is
checked is each host's own state afterwards (its ``list``, its files, its disk's content digest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.model.layout import STOPPING
from hivectl.storage.sparse import file_digest
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, state_of, wait_for
from tests.multihost.migrate_bed import OtherHost


@pytest.fixture
def other(host: Any, tmp_path: Path) -> Iterator[OtherHost]:
    target = OtherHost(tmp_path)
    assert target.run("switch", "create", "public").status == 0
    try:
        yield target
    finally:
        target.close()


def _write(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_cold_migration_of_a_stopped_guest_carries_its_files_and_disk(host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    disk = guest / "disk0.img"
    _write(disk, 0, os.urandom(300_000))
    _write(disk, 700 << 20, os.urandom(1 << 20))
    (guest / "uefi-vars.fd").write_bytes(b"VARS" * 1000)
    (guest / "tpm").mkdir()
    (guest / "tpm" / "tpm2-00.permall").write_bytes(b"tpm state")
    (guest / "vm-bhyve.log").write_text("a run's log, which stays\n")
    digest, conf_text = file_digest(disk), (guest / "g1.conf").read_text()

    done = hivectl("migrate", "--json", "g1", other.remote)
    assert done.status == 0, done.err
    result = done.json()
    assert result["mode"] == "cold" and result["started"] is False and result["downtime"] is None
    assert result["bytes"] < 2 << 20  # the 1 GiB disk holds 1.3 MiB of data: only that is sent

    landed = other.vm_dir / "g1"
    assert file_digest(landed / "disk0.img") == digest
    assert os.path.getsize(landed / "disk0.img") == 1 << 30
    assert _allocated(landed / "disk0.img") < 4 << 20  # still sparse on the target
    assert (landed / "g1.conf").read_text() == conf_text  # same uuid and MACs: it is the same guest
    assert (landed / "uefi-vars.fd").read_bytes() == b"VARS" * 1000
    assert (landed / "tpm" / "tpm2-00.permall").read_bytes() == b"tpm state"
    assert not (landed / "vm-bhyve.log").exists()
    assert other.guests()["g1"]["state"] == "Stopped"
    assert not guest.exists() and "g1" not in {r["name"] for r in hivectl("list", "--json").json()}
    phases = [e["details"]["phase"] for e in hivectl("events", "--json").out and
              map(json.loads, hivectl("events", "--json").out.splitlines()) if e["type"] == "migration"]
    assert phases == ["started", "done"]
    there = [json.loads(line) for line in other.run("events", "--json").out.splitlines()]
    assert [e["details"]["phase"] for e in there if e["type"] == "migration"] == ["received"]


def test_rename_and_keep_source(host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    _write(guest / "disk0.img", 4096, b"x" * 5000)
    done = hivectl("migrate", "--rename", "g2", "--keep-source", "g1", other.remote)
    assert done.status == 0, done.err
    assert "g1 migrated to" in done.out
    assert (other.vm_dir / "g2" / "g2.conf").is_file() and not (other.vm_dir / "g2" / "g1.conf").exists()
    assert file_digest(other.vm_dir / "g2" / "disk0.img") == file_digest(guest / "disk0.img")
    assert set(other.guests()) == {"g2"}
    assert state_of("g1")["state"] == "Stopped"  # kept here


def test_preflight_lists_every_difference_and_moves_nothing(host: Any, other: OtherHost) -> None:
    make_guest(host, "g1", cpu="64", network1_type="virtio-net", network1_switch="lan", passthru0="3/0/0")
    assert other.run("create", "-s", "1G", "g1").status == 0  # the name is taken there
    before_here = sorted(os.listdir(host.vm_dir / "g1"))
    before_there = other.entries()

    refused = hivectl("migrate", "-d", "default", "g1", other.remote)
    assert refused.status == 1
    lines = refused.err.splitlines()
    assert lines[0] == f"hivectl: cannot migrate g1 to {other.remote}:"
    problems = "\n".join(lines[1:])
    assert "a guest named g1 already exists here" in problems
    assert "network1_switch=lan: there is no such switch here" in problems
    assert "cpu=64: this host has 4 CPUs" in problems
    assert "passthru0=3/0/0: no such device ready for passthrough here" in problems
    assert len(lines) >= 5  # one line each
    assert sorted(os.listdir(host.vm_dir / "g1")) == before_here
    assert other.entries() == before_there

    missing = hivectl("migrate", "-d", "nowhere", "g1", other.remote)
    assert missing.status == 1 and "datastore nowhere" in missing.err


def test_dry_run_checks_both_ends_and_changes_nothing(host: Any, other: OtherHost) -> None:
    make_guest(host, "g1")
    shown = hivectl("migrate", "--dry-run", "g1", other.remote)
    assert shown.status == 0, shown.err
    assert "send " in shown.out and "destroy g1 here" in shown.out and "warning" not in shown.out
    make_guest(host, "g2", network0_switch="lan")
    warned = hivectl("migrate", "--dry-run", "g2", other.remote)
    assert warned.status == 0, warned.err  # as start --dry-run: the findings are shown, not fatal
    assert "warning: " in warned.out and "network0_switch=lan: there is no such switch here" in warned.out
    assert state_of("g1")["state"] == "Stopped" and other.guests() == {}


def test_a_running_guest_is_stopped_sent_and_started_there(host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    _write(guest / "disk0.img", 1 << 20, os.urandom(2 << 20))
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    done = hivectl("migrate", "--json", "g1", other.remote, timeout=180)
    assert done.status == 0, done.err
    result = done.json()
    assert result["was_running"] and result["started"] and result["downtime"] > 0
    wait_for(lambda: other.guests()["g1"]["state"].startswith("Running"), what="g1 running on the target")
    assert "g1" in other.sim.running() and "g1" not in host.running()
    assert not (host.vm_dir / "g1").exists()
    assert other.run("stop", "g1").status == 0


def test_warm_migration_sends_rounds_while_the_guest_writes(host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    disk = guest / "disk0.img"
    _write(disk, 0, os.urandom(8 << 20))
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    writing = threading.Event()
    writing.set()

    def guest_writes() -> None:  # the stand-in bhyve does not write: this thread is the guest's I/O
        offset = 16 << 20
        while writing.is_set() and not (guest / STOPPING).exists():  # a guest stops writing once told to stop
            _write(disk, offset % (900 << 20), os.urandom(256 << 10))
            offset += 3 << 20
            time.sleep(0.05)

    writer = threading.Thread(target=guest_writes)
    writer.start()
    try:
        done = hivectl("migrate", "--warm", "--max-downtime", "4", "--keep-source", "--json", "g1", other.remote,
                       timeout=300)
    finally:
        writing.clear()
        writer.join()
    assert done.status == 0, done.err
    result = done.json()
    assert result["mode"] == "warm" and result["started"]
    rounds = result["rounds"]
    assert len(rounds) >= 3  # at least two while it ran, then the final one
    assert rounds[0]["bytes"] >= 8 << 20  # the first round is the whole data
    assert rounds[-1]["bytes"] < rounds[0]["bytes"]  # the last only what changed since the one before
    assert 0 < result["downtime"] < 30
    assert file_digest(other.vm_dir / "g1" / "disk0.img") == file_digest(disk)  # every write arrived
    wait_for(lambda: other.guests()["g1"]["state"].startswith("Running"), what="g1 running on the target")
    assert state_of("g1")["state"] == "Stopped"
    assert other.run("stop", "g1").status == 0


RELAY = Path(__file__).resolve().parent / "relay.py"


def _relayed(other: OtherHost, mode: str, limit: int) -> tuple[str, dict[str, str]]:
    return f"exec:{sys.executable} {RELAY} {other.wrapper}", {"RELAY_MODE": mode, "RELAY_LIMIT": str(limit)}


def _hidden(other: OtherHost) -> list[str]:
    return [e for e in other.entries() if e.startswith(".hivectl-")]


def test_killed_ssh_halfway_leaves_the_guest_running_here_and_nothing_there(host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    _write(guest / "disk0.img", 0, os.urandom(12 << 20))
    digest = file_digest(guest / "disk0.img")
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    remote, env = _relayed(other, "self", 4 << 20)
    failed = hivectl("migrate", "g1", remote, env=env, timeout=180)
    assert failed.status == 1
    assert "g1" in failed.err
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running here again")
    assert "g1" in host.running()
    assert file_digest(guest / "disk0.img") == digest
    wait_for(lambda: not _hidden(other), what="the receiver to remove its staging directory")
    assert other.guests() == {}
    assert not any(e.startswith("g1") for e in other.entries())
    there = [json.loads(line) for line in other.run("events", "--json").out.splitlines()]
    assert [e["details"]["phase"] for e in there if e["type"] == "migration"] == ["refused"]
    assert hivectl("stop", "g1").status == 0


def test_receiver_killed_outright_leaves_no_guest_and_the_next_migration_collects_it(
        host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    _write(guest / "disk0.img", 0, os.urandom(12 << 20))
    remote, env = _relayed(other, "far", 4 << 20)
    failed = hivectl("migrate", "g1", remote, env=env)
    assert failed.status == 1
    assert other.guests() == {}
    assert len(_hidden(other)) == 1  # SIGKILL: nothing could clean up; hidden, unlocked, not a guest
    assert state_of("g1")["state"] == "Stopped" and (guest / "disk0.img").is_file()
    again = hivectl("migrate", "g1", other.remote)
    assert again.status == 0, again.err
    assert _hidden(other) == [] and set(other.guests()) == {"g1"}


def test_a_guest_that_will_not_start_there_is_removed_there_and_runs_here_again(
        host: Any, other: OtherHost) -> None:
    guest = make_guest(host, "g1")
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running")
    # Someone else's VM of that name on the target: the preflight cannot know, the start there refuses it.
    made = subprocess.run(["bhyvectl", "--create", "--vm=g1"], env={**os.environ, **other.env}, check=False)
    assert made.returncode == 0 and other.sim.vm_exists("g1")
    failed = hivectl("migrate", "g1", other.remote, timeout=180)
    assert failed.status == 1, failed.out
    assert "g1" in failed.err
    wait_for(lambda: state_of("g1")["state"].startswith("Running"), what="g1 running here again")
    assert other.guests() == {} and not any(e.startswith("g1") for e in other.entries())
    assert (guest / "g1.conf").is_file()
    assert hivectl("stop", "g1").status == 0


def test_a_second_migration_of_the_same_guest_is_refused(host: Any, other: OtherHost) -> None:
    make_guest(host, "g1")
    from hivectl.migrate.lock import migration_lock

    with migration_lock(host.vm_dir / ".config", "g1", "test"):
        refused = hivectl("migrate", "g1", other.remote)
    assert refused.status == 1 and "a migration of g1 is already under way" in refused.err
    assert other.guests() == {}
