"""Start and stop edge cases found in a review pass (each failed before its fix), on the simulated FreeBSD host.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for
from tests.simhost.fixture import BIN_DIR


def test_vnc_password_file_is_removed_when_bhyve_fails_to_start(host: Any) -> None:
    guest = make_guest(host, "gfx", loader="uefi", graphics="yes", graphics_port="5917",
                       vnc_password="s3cret", bhyve_options="-o broken")
    result = hivectl("start", "gfx")
    assert result.status == 1, result.err
    assert state_of("gfx")["state"] == "Stopped"
    assert not (guest / "bhyve.config").exists(), "the -k file holding the VNC password is removed"


def test_stop_of_several_guests_still_stops_the_running_ones_when_one_is_not_running(host: Any) -> None:
    for name in ("g1", "g2"):
        make_guest(host, name)
    host.set_guest_acpi("g1", "ignore")
    assert hivectl("start", "g1").status == 0
    assert state_of("g1")["state"].startswith("Running")
    result = hivectl("stop", "--timeout", "1", "g1", "g2")
    assert result.status == 1, "g2 was not running"
    assert "g2 is not running" in result.err and "g1: did not power off within 1 s" in result.err
    assert state_of("g1")["state"] == "Stopped", "g1 is stopped (forced) all the same"
    assert not host.vm_exists("g1")
    # Through the Python API a guest that is not running is an error, raised before any guest is touched.
    from hivectl.api import Hivectl
    from hivectl.errors import Conflict

    assert hivectl("start", "g1").status == 0
    with pytest.raises(Conflict, match="g2 is not running"):
        Hivectl().stop(["g1", "g2"], timeout=1)
    assert state_of("g1")["state"].startswith("Running")
    assert not (host.vm_dir / "g1" / "hivectl.stopping").exists(), "g1 was not asked to stop"
    assert hivectl("stop", "--timeout", "1", "g1").status == 0


def test_stop_cleans_up_after_a_dead_supervisor(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor_pid = int((guest / "run.lock").read_text().split("pid=")[1].split()[0])
    os.kill(supervisor_pid, signal.SIGKILL)
    time.sleep(0.3)
    assert state_of("g1")["state"].startswith("Running")
    (guest / "restart").write_text("")  # a restart asked for while nobody watched
    result = hivectl("stop", "--timeout", "10", "g1")
    assert result.status == 0, result.err
    assert state_of("g1")["state"] == "Stopped"
    assert taps(host) == [] and not host.vm_exists("g1")
    for leftover in ("run.lock", "console", "hivectl.state", "hivectl.stopping", "restart"):
        assert not (guest / leftover).exists(), leftover


def test_restart_and_reset_refuse_a_guest_nobody_would_boot_again(host: Any) -> None:
    guest = make_guest(host)
    assert hivectl("start", "g1").status == 0
    supervisor_pid = int((guest / "run.lock").read_text().split("pid=")[1].split()[0])
    os.kill(supervisor_pid, signal.SIGKILL)
    time.sleep(0.3)
    running = state_of("g1")["state"]
    for command in (["restart"], ["reset", "-f"]):
        result = hivectl(*command, "g1")
        assert result.status == 1 and "without its supervisor" in result.err, (command, result.err)
        assert state_of("g1")["state"] == running, "the guest was left running, not turned off"
    assert "adopted" in hivectl("start", "g1").out
    for command in (["restart"], ["reset", "-f"]):
        result = hivectl(*command, "g1")
        assert result.status == 1 and "was adopted" in result.err, (command, result.err)
        assert state_of("g1")["state"] == running
    assert hivectl("stop", "g1").status == 0
    assert state_of("g1")["state"] == "Stopped" and taps(host) == []


def test_prestart_and_priority_apply(host: Any) -> None:
    guest = make_guest(host, prestart="setup.sh", priority="7", limit_pcpu="50")
    script = guest / "setup.sh"
    script.write_text('#!/bin/sh\necho "$1 $2 $(pwd)" >> prestart.out\nexit 3\n')
    script.chmod(0o755)
    dry = hivectl("start", "--dry-run", "g1")
    assert dry.status == 0, dry.err
    assert "not supported" not in dry.err and "prestart=" not in dry.err  # limits: tests/limits/
    assert "warning: warning" not in dry.err
    assert hivectl("start", "g1").status == 0, "a failing prestart does not stop the boot (vm-bhyve's rule)"
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[16]) == 7, "bhyve runs with the guest's priority as its nice value"
    assert (guest / "prestart.out").read_text().split() == ["g1", str(guest), str(guest)]
    host.exit_guest("g1", 0)  # a guest reboot: prestart runs again
    wait_for(lambda: len((guest / "prestart.out").read_text().splitlines()) == 2, what="prestart on reboot")
    log = (guest / "vm-bhyve.log").read_text()
    assert "prestart " in log and "exited with status 3" in log
    assert hivectl("stop", "g1").status == 0


def test_a_stop_marked_while_a_reboot_spawns_the_hypervisor_still_stops_it(host: Any, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``stop`` during a guest reboot: its mark lands after the supervisor's pre-spawn check and its read of
    the state before the new hypervisor's pid (found as a 60 s hang of ``stop`` in CI). A ``bhyve`` ahead of
    the stand-in on PATH writes the mark exactly there, as such a stop does; the supervisor must press the
    power button itself. Before the fix the rebooted guest ran on and no one asked it to stop."""
    guest = make_guest(host)
    wrappers = tmp_path / "wrappers"
    wrappers.mkdir()
    armed = tmp_path / "armed"
    bhyve = wrappers / "bhyve"
    bhyve.write_text(f'#!/bin/sh\n[ -e "{armed}" ] && echo 0 > "{guest}/hivectl.stopping"\n'
                     f'exec "{BIN_DIR}/bhyve" "$@"\n')
    bhyve.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: bhyve_pid(host, "g1"))
    armed.write_text("")
    host.exit_guest("g1", 0)  # the guest reboots; the new bhyve starts with the stop already marked
    wait_for(lambda: state_of("g1")["state"] == "Stopped", what="the rebooted guest to power off")
    log = (guest / "vm-bhyve.log").read_text()
    assert "a stop was requested while the hypervisor started" in log
    assert not host.vm_exists("g1")
