"""Suspend and resume on the simulated FreeBSD host (issue 13, item 4).

The bhyve stand-in gives each fresh boot a guest identity of its own (``guest_boot``); a snapshot build
writes it into the checkpoint on ``bhyvectl --suspend`` and takes it back from ``bhyve -r``, so "the same
guest continues" is something the host shows, not something hivectl says. The default stand-in is a
release build, which rejects ``-r`` and ``--suspend`` as the real one does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hivectl.rcfile import RcFile
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import make_guest, state_of, taps, wait_for

SAVE_FILES = ("g.save", "g.save.kern", "g.save.meta", "g.save.hivectl")


def _running_guest(host: Any, **keys: str) -> tuple[Path, str]:
    guest = make_guest(host, "g", **keys)
    result = hivectl("start", "g")
    assert result.status == 0, result.err
    return guest, host.running()["g"]["guest_boot"]


def _suspend(guest: Path) -> None:
    result = hivectl("suspend", "g")
    assert result.status == 0, result.err
    assert f"suspended into {guest / 'g.save'}" in result.out


def test_suspend_then_resume_continues_the_same_guest(host: Any) -> None:
    host.set_snapshot_build()
    guest, boot = _running_guest(host)
    plan = [json.loads(line) for line in hivectl("suspend", "--dry-run", "g").out.splitlines()]
    assert ["bhyvectl", "--vm=g", f"--suspend={guest / 'g.save'}"] in plan
    assert host.running()["g"]["guest_boot"] == boot, "a dry run suspends nothing"

    _suspend(guest)
    assert state_of("g")["state"] == "Suspended"
    assert all((guest / f).is_file() for f in SAVE_FILES)
    assert "g" not in host.running() and not host.vm_exists("g"), "bhyve exited and destroyed its VM"
    assert not (guest / "run.lock").exists() and not (guest / "suspending.lock").exists()
    assert taps(host) == [], "the run was cleaned up as after a stop"
    assert json.loads(hivectl("info", "--json", "g").out)["state"] == "Suspended"
    log = (guest / "vm-bhyve.log").read_text()
    assert "restarting" not in log, "bhyve's exit 0 after the save is no reboot"

    plan = [json.loads(line) for line in hivectl("resume", "--dry-run", "g").out.splitlines()]
    assert plan[-1][-3:] == ["-r", str(guest / "g.save"), "g"], plan[-1]
    assert hivectl("start", "--dry-run", "g").out.splitlines()[-1] == json.dumps(plan[-1])

    result = hivectl("resume", "g")
    assert result.status == 0, result.err
    record = host.running()["g"]
    assert record["restored_from"] == str(guest / "g.save")
    assert record["argv"][-3:] == ["-r", str(guest / "g.save"), "g"]
    assert record["guest_boot"] == boot, "the guest that was saved runs on"
    assert state_of("g")["state"].startswith("Running")
    assert not [f for f in SAVE_FILES if (guest / f).exists()], "the save is consumed once resumed"
    assert hivectl("stop", "g").status == 0
    assert hivectl("start", "g").status == 0
    assert host.running()["g"]["guest_boot"] != boot and host.running()["g"]["restored_from"] is None
    assert hivectl("stop", "g").status == 0


def test_a_release_build_of_bhyve_gives_one_clear_error(host: Any) -> None:
    guest, boot = _running_guest(host)
    result = hivectl("suspend", "g")
    assert result.status == 1
    assert "built without snapshot support (BHYVE_SNAPSHOT)" in result.err, result.err
    assert "'bhyve -h' lists no -r option and bhyvectl has no --suspend" in result.err
    assert host.running()["g"]["guest_boot"] == boot and not (guest / "g.save").exists(), "nothing happened"
    assert hivectl("stop", "g").status == 0
    # The real tools reject the options the same way (the stand-in is a release build by default).
    assert host.run(["bhyvectl", "--vm=g", f"--suspend={guest}/x"]).returncode == 1
    # A save left by vm-bhyve cannot be resumed here, and is never booted over.
    (guest / "g.save").write_bytes(b"saved memory")
    loaded = len(host.loader_runs())
    result = hivectl("start", "g")
    assert result.status == 1 and "cannot be resumed here" in result.err and "BHYVE_SNAPSHOT" in result.err
    assert len(host.loader_runs()) == loaded and not host.vm_exists("g"), "nothing was booted"
    assert state_of("g")["state"] == "Suspended" and (guest / "g.save").read_bytes() == b"saved memory"


def test_a_save_is_refused_once_the_config_changed_and_discard_moves_it_aside(host: Any) -> None:
    host.set_snapshot_build()
    guest, boot = _running_guest(host)
    _suspend(guest)
    conf = RcFile.load(guest / "g.conf")
    old = conf.get("cpu")
    conf.set("cpu", "2")
    conf.save()
    result = hivectl("resume", "g")
    assert result.status == 1
    assert f"the config changed since the save: cpu ({old} -> 2)" in result.err, result.err
    assert "resume --discard g" in result.err
    assert "g" not in host.running() and state_of("g")["state"] == "Suspended"
    assert all((guest / f).is_file() for f in SAVE_FILES), "a refused save is kept"
    # Putting the config back makes the save fit again: the check compares, it does not guess.
    conf.set("cpu", old)
    conf.save()
    plan = hivectl("resume", "--dry-run", "g")
    assert plan.status == 0 and '"-r"' in plan.out.splitlines()[-1], plan.err

    conf.set("memory", "2G")
    conf.save()
    dry = [json.loads(line) for line in hivectl("resume", "--discard", "--dry-run", "g").out.splitlines()]
    assert dry[0][0] == "mkdir" and dry[1][0] == "mv" and "-r" not in dry[-1]
    assert all((guest / f).is_file() for f in SAVE_FILES), "a dry run moves nothing"
    result = hivectl("resume", "--discard", "g")
    assert result.status == 0, result.err
    assert host.running()["g"]["guest_boot"] != boot, "booted afresh"
    aside = [p for p in guest.iterdir() if p.name.startswith("g.save.discarded-")]
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir()) == sorted(SAVE_FILES)
    assert not (guest / "g.save").exists()
    assert hivectl("stop", "g").status == 0


def test_a_save_is_refused_once_a_disk_was_written(host: Any) -> None:
    host.set_snapshot_build()
    guest, boot = _running_guest(host)
    _suspend(guest)
    with open(guest / "disk0.img", "r+b") as disk:
        disk.write(b"written while the guest was suspended")
    result = hivectl("start", "g")
    assert result.status == 1
    assert f"disk0 ({guest / 'disk0.img'}) was written since the save" in result.err, result.err
    assert state_of("g")["state"] == "Suspended"
    result = hivectl("start", "--discard-save", "g")
    assert result.status == 0, result.err
    assert host.running()["g"]["guest_boot"] != boot and not (guest / "g.save").exists()
    assert hivectl("stop", "g").status == 0


def test_a_vm_bhyve_save_is_resumed_when_the_disks_are_older_and_refused_when_not(host: Any) -> None:
    host.set_snapshot_build()
    guest, boot = _running_guest(host)
    # A bare bhyvectl --suspend (vm-bhyve's, or one whose hivectl was killed): no lock, no hivectl record.
    # bhyve exits 0, a reboot's status; the save it left ends the run instead of a boot over it.
    assert host.run(["bhyvectl", "--vm=g", f"--suspend={guest / 'g.save'}"]).returncode == 0
    wait_for(lambda: state_of("g")["state"] == "Suspended", what="the vm-bhyve style suspend to end")
    assert not (guest / "g.save.hivectl").exists()
    assert "restarting" not in (guest / "vm-bhyve.log").read_text(), "not booted over its save"
    os.utime(guest / "disk0.img", ns=(1, 1))  # written long before the save
    result = hivectl("resume", "g")
    assert result.status == 0, result.err
    assert host.running()["g"]["guest_boot"] == boot
    assert hivectl("stop", "g").status == 0

    assert hivectl("start", "g").status == 0
    boot = host.running()["g"]["guest_boot"]
    assert host.run(["bhyvectl", "--vm=g", f"--suspend={guest / 'g.save'}"]).returncode == 0
    wait_for(lambda: state_of("g")["state"] == "Suspended", what="the second suspend to end")
    later = (guest / "g.save").stat().st_mtime_ns + 10**9
    os.utime(guest / "disk0.img", ns=(later, later))
    result = hivectl("resume", "g")
    assert result.status == 1 and "disk0" in result.err and "written after the save" in result.err, result.err


def test_suspend_refuses_a_guest_that_is_not_running(host: Any) -> None:
    host.set_snapshot_build()
    make_guest(host, "g")
    result = hivectl("suspend", "g")
    assert result.status == 1 and "g is not running (Stopped)" in result.err, result.err
    result = hivectl("resume", "g")
    assert result.status != 0 and "not Suspended" in result.err, result.err


def test_a_suspending_lock_left_behind_does_not_stop_a_running_guests_reboot(host: Any) -> None:
    """A ``suspend`` killed after writing vm-bhyve's lock and before asking bhyve leaves the lock on a guest
    that runs on: its next reboot is still a reboot (the save decides, not the lock)."""
    guest, boot = _running_guest(host)
    (guest / "suspending.lock").write_text("host\n")
    pid = host.running()["g"]["pid"]
    host.exit_guest("g", 0)
    wait_for(lambda: host.running().get("g", {}).get("pid") not in (None, pid), what="the reboot")
    assert state_of("g")["state"].startswith("Running") and host.running()["g"]["guest_boot"] != boot
    assert hivectl("stop", "g").status == 0
    assert hivectl("start", "g").status == 0
    assert not (guest / "suspending.lock").exists(), "a start clears a lock left behind"
    assert hivectl("stop", "g").status == 0


def test_suspendall_and_resumeall_take_every_guest_in_vm_bhyve_order(host: Any) -> None:
    host.set_snapshot_build()
    names = ["a", "b", "c"]
    boots = {}
    for name in names:
        make_guest(host, name)
        assert hivectl("start", name).status == 0
        boots[name] = host.running()[name]["guest_boot"]
    host.rc.write_text(host.rc.read_text() + 'vm_list="b a"\n')  # c is not listed: suspended first, resumed last
    plan = [json.loads(line) for line in hivectl("suspendall", "--dry-run").out.splitlines()]
    saves = [argv[-1].removeprefix("--suspend=") for argv in plan if argv[:1] == ["bhyvectl"] and
             any(word.startswith("--suspend=") for word in argv)]
    assert saves == [str(host.vm_dir / n / f"{n}.save") for n in ("c", "a", "b")], plan
    assert all(host.running()[n]["guest_boot"] == boots[n] for n in names), "a dry run suspends nothing"

    done = hivectl("suspendall")
    assert done.status == 0, done.err
    assert [line.split(":")[0] for line in done.out.splitlines()] == ["c", "a", "b"]
    assert all(state_of(n)["state"] == "Suspended" for n in names) and not host.running()

    plan = [json.loads(line) for line in hivectl("resumeall", "--dry-run").out.splitlines()]
    restores = [argv[-1] for argv in plan if "-r" in argv]
    assert restores == ["b", "a", "c"], plan
    assert not host.running(), "a dry run resumes nothing"
    done = hivectl("resumeall")
    assert done.status == 0, done.err
    assert [line.split(":")[0] for line in done.out.splitlines()] == ["b", "a", "c"]
    for name in names:
        assert host.running()[name]["guest_boot"] == boots[name], "the guest that was saved runs on"
        assert host.running()[name]["restored_from"] == str(host.vm_dir / name / f"{name}.save")
    again = hivectl("resumeall")  # nothing is suspended any more: nothing to do
    assert (again.status, again.out) == (0, "")
    assert hivectl("stopall").status == 0
