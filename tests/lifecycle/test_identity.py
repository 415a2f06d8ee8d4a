"""Process identity on the simulated FreeBSD host: hivectl never signals, adopts or destroys what it did
not start, adoption happens once, and a run whose supervisor died is torn down by whoever clears it.

Each test drives the real CLI; the simulated bhyve, bhyvectl and ifconfig keep the host's state (VMs in
/dev/vmm, running bhyve processes with their ``bhyve: NAME`` title, taps), so the assertions are on what
the host shows. The unrelated processes are real ones (``sleep``) that must still run at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hivectl.host import identity
from hivectl.runtime import boot_id
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for

FW = "/usr/local/share/uefi-firmware/BHYVE_UEFI.fd"


def supervisor_of(guest: Path) -> int:
    return int((guest / "run.lock").read_text().split("pid=")[1].split()[0])


def kill_supervisor(guest: Path) -> None:
    pid = supervisor_of(guest)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: identity.identify(pid) is None, what="supervisor gone")


def supervisors(name: str) -> list[identity.ProcessIdentity]:
    """Live supervisors of guest ``name`` in this test's vm_dir."""
    mine = f"HIVECTL_VM_DIR={os.environ['HIVECTL_VM_DIR']}".encode()
    found = []
    for proc in identity.processes():
        if "hivectl.runner.supervisor" in proc.argv and proc.argv[-1] == name:
            try:
                if mine in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
                    found.append(proc)
            except OSError:
                continue
    return found


@pytest.fixture
def stranger() -> Any:
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("recorded_start", ["1", None], ids=["other-start-time", "no-start-time"])
def test_a_pid_now_owned_by_another_process_is_never_trusted(host: Any, stranger: Any,
                                                            recorded_start: str | None) -> None:
    """A stale lock and state file whose pids now belong to ``sleep``: before, ``list`` showed Running,
    ``stop`` sent SIGTERM to the sleep and ``start`` adopted it."""
    guest = make_guest(host)
    start_line = f"start={recorded_start}\n" if recorded_start else ""
    (guest / "run.lock").write_text(f"{socket.gethostname()}\npid={stranger.pid}\n{start_line}boot={boot_id()}\n")
    record: dict[str, Any] = {"state": "running", "pid": stranger.pid, "teardown": []}
    if recorded_start:
        record["start"] = recorded_start
    (guest / "hivectl.state").write_text(json.dumps(record))
    # The run is over (its pids are someone else's): Stopped, not "Locked (host, stale)"; the disk
    # operations refuse until stop or start clears what the run left.
    assert state_of("g1")["state"] == "Stopped"
    listed = hivectl("list")
    header, row = (line.split() for line in listed.out.splitlines()[:2])
    assert listed.status == 0 and row[header.index("STATE")] == "Stopped", listed.out
    refused = hivectl("destroy", "-f", "g1")
    assert refused.status == 1 and "hivectl stop g1" in refused.err and guest.is_dir(), refused.err
    stopped = hivectl("stop", "--timeout", "5", "g1")
    assert stranger.poll() is None, "stop signalled a process hivectl did not start"
    assert stopped.status == 0 and state_of("g1")["state"] == "Stopped", stopped.err
    (guest / "run.lock").write_text(f"{socket.gethostname()}\npid={stranger.pid}\n{start_line}boot={boot_id()}\n")
    (guest / "hivectl.state").write_text(json.dumps(record))
    started = hivectl("start", "g1")
    assert started.status == 0 and "adopted" not in started.out, started.out + started.err
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    assert pid != stranger.pid and state_of("g1")["state"] == f"Running ({pid})"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert stranger.poll() is None, "start or stop signalled a process hivectl did not start"
    assert taps(host) == [] and not host.vm_exists("g1")


def test_a_vm_made_outside_hivectl_is_refused_and_kept(host: Any) -> None:
    """``/dev/vmm/g1`` made by bhyvectl by hand: ``start`` used to destroy it and boot its own."""
    guest = make_guest(host)
    assert host.run(["bhyvectl", "--vm=g1", "--create"]).returncode == 0
    result = hivectl("start", "g1")
    assert result.status != 0
    line = result.err.strip()
    assert len(line.splitlines()) == 1 and "/dev/vmm/g1" in line and "bhyvectl --destroy --vm=g1" in line, line
    assert host.vm_exists("g1"), "the foreign VM was destroyed"
    assert bhyve_pid(host, "g1") is None and taps(host) == []
    assert not (guest / "run.lock").exists() and state_of("g1")["state"] == "Stopped"
    assert host.run(["bhyvectl", "--vm=g1", "--destroy"]).returncode == 0
    assert hivectl("start", "g1").status == 0, "cleared as the message says, it starts"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0


def test_a_running_bhyve_hivectl_did_not_start_is_refused_and_left_running(host: Any) -> None:
    make_guest(host)
    foreign = host.start(["bhyve", "-c", "1", "-m", "256M", "-s", "0,hostbridge", "-s", "31,lpc",
                          "-l", "com1,/dev/nmdm-g1.1A", "-l", f"bootrom,{FW}", "g1"])
    record = host.wait_running("g1", foreign)
    result = hivectl("start", "g1")
    assert result.status != 0 and "did not start" in result.err, result.err
    assert foreign.poll() is None and bhyve_pid(host, "g1") == record["pid"], "the foreign bhyve was touched"
    assert host.vm_exists("g1") and state_of("g1")["state"] == "Stopped"
    assert hivectl("stop", "g1").status != 0 and foreign.poll() is None


def test_concurrent_starts_adopt_an_orphaned_guest_exactly_once(host: Any) -> None:
    """8 starts of a guest whose supervisor died: before, every one adopted it (8 watchers, each
    rewriting the lock; the last to finish removed the lock of the next run)."""
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    kill_supervisor(guest)
    procs = [subprocess.Popen([sys.executable, "-m", "hivectl", "start", "g1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    winners = [out for (out, _err), code in results if code == 0]
    assert len(winners) == 1 and "adopted" in winners[0], results
    assert all("already Running" in err for (_out, err), code in results if code != 0), results
    assert len(supervisors("g1")) == 1, "one supervisor watches the guest"
    assert identity.identify(supervisor_of(guest)) is not None, "the lock names the live adopter"
    assert bhyve_pid(host, "g1") == pid and state_of("g1")["state"] == f"Running ({pid})"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert state_of("g1")["state"] == "Stopped" and taps(host) == [] and not host.vm_exists("g1")
    left = supervisors("g1")
    assert left == [], (left, results, (guest / "vm-bhyve.log").read_text())


@pytest.mark.parametrize("who", ["stop", "start"])
def test_the_taps_of_a_killed_supervisor_are_torn_down_by_whoever_clears_its_run(host: Any, who: str) -> None:
    """Supervisor SIGKILLed, then the guest powers off: its tap and VM stayed behind for good."""
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: bhyve_pid(host, "g1"))
    kill_supervisor(guest)
    host.exit_guest("g1", 1)
    wait_for(lambda: bhyve_pid(host, "g1") is None, what="bhyve exited")
    assert len(taps(host)) == 1 and host.vm_exists("g1"), "the dead run left its tap and VM"
    # The run is over: Stopped, its lock left for whoever clears the run (stop or start) to remove.
    assert state_of("g1")["state"] == "Stopped" and (guest / "run.lock").exists()
    result = hivectl(who, "g1")
    assert result.status == 0, result.err
    if who == "stop":
        assert taps(host) == [] and not host.vm_exists("g1") and state_of("g1")["state"] == "Stopped"
        assert "stale run" in result.err
    else:
        wait_for(lambda: bhyve_pid(host, "g1"))
        assert len(taps(host)) == 1
        assert hivectl("stop", "--timeout", "10", "g1").status == 0
        assert taps(host) == [] and not host.vm_exists("g1")


def test_a_supervisor_killed_before_recording_the_pid_does_not_get_its_vm_destroyed(host: Any) -> None:
    """The state file as it is between spawning bhyve and recording its pid (the intent only): the next
    start used to see a stale run and destroy the running VM; now bhyve is found by title and start time."""
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    kill_supervisor(guest)
    me = identity.identify(pid)
    assert me is not None
    recorded = json.loads((guest / "hivectl.state").read_text())
    intent = {"state": "spawning", "pid": None, "intent": me.started - 0.5, "program": "bhyve",
              "token": recorded["token"], "teardown": recorded["teardown"]}
    (guest / "hivectl.state").write_text(json.dumps(intent))
    assert state_of("g1")["state"] == f"Running ({pid})"
    result = hivectl("start", "g1")
    assert result.status == 0 and "adopted" in result.out, result.out + result.err
    assert bhyve_pid(host, "g1") == pid and host.vm_exists("g1"), "the running VM was destroyed"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert taps(host) == [] and not host.vm_exists("g1") and state_of("g1")["state"] == "Stopped"


def test_an_adopted_guest_that_stops_says_its_exit_is_unknown(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: bhyve_pid(host, "g1"))
    kill_supervisor(guest)
    assert hivectl("start", "g1").status == 0
    host.exit_guest("g1", 1)
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="adopter cleaned up")
    last = json.loads((guest / "hivectl.last").read_text())
    assert last["outcome"] == "unknown" and last["status"] is None and last["adopted"] is True
    assert taps(host) == [] and not host.vm_exists("g1")


def test_an_instant_reboot_loop_backs_off(host: Any) -> None:
    """A guest that reboots the moment it boots: before, it was booted again at once, without end."""
    from hivectl.runner import backoff

    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    boots: list[tuple[int, float]] = []
    for _ in range(backoff.RAPID_LIMIT + 2):
        pid = wait_for(lambda: (p := bhyve_pid(host, "g1")) and p not in [b[0] for b in boots] and p,
                       timeout=30, what="next boot")
        boots.append((pid, time.monotonic()))
        host.exit_guest("g1", 0)  # bhyve(8) exit status 0: the guest reset itself
    log = (guest / "vm-bhyve.log").read_text()
    waits = [line for line in log.splitlines() if "reboot loop" in line]
    assert len(waits) >= 2, log
    assert "waiting 1 s" in waits[0] and "waiting 2 s" in waits[1], waits
    gap = boots[backoff.RAPID_LIMIT + 1][1] - boots[backoff.RAPID_LIMIT][1]
    assert gap >= 2.0, f"the second wait lasted {gap:.2f} s"
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    assert taps(host) == [] and not host.vm_exists("g1")
