"""Foreground starts (``start -f``) stopped by signals, and their failures, on the simulated FreeBSD host.

Moved from tests/test_lifecycle_more.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, taps, wait_for


def assert_clean(host: Any, name: str) -> None:
    """Stopped, and nothing of the run left on the host or in the guest directory."""
    assert state_of(name)["state"] == "Stopped"
    assert bhyve_pid(host, name) is None
    assert taps(host) == [], "no tap left behind"
    assert not host.vm_exists(name), "bhyvectl --destroy ran"
    for leftover in ("run.lock", "console", "hivectl.state", "hivectl.stopping"):
        assert not (host.vm_dir / name / leftover).exists(), leftover


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_foreground_start_stops_cleanly_on_a_signal(host: Any, sig: signal.Signals) -> None:
    guest = make_guest(host)
    proc = subprocess.Popen([sys.executable, "-m", "hivectl", "start", "-f", "g1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rec = host.wait_running("g1", proc, timeout=20)
        argv = rec["argv"]
        assert "com1,stdio" in argv, "com1 is the terminal"
        assert "-c" not in host.loader_runs()[-1]["argv"]
        assert (guest / "run.lock").exists() and len(taps(host)) == 1
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert_clean(host, "g1")
    log = (guest / "vm-bhyve.log").read_text()
    assert "stop signal received" in log and "hypervisor exited with status 1 (poweroff)" in log


def test_foreground_second_signal_forces_power_off(host: Any) -> None:
    guest = make_guest(host)
    host.set_guest_acpi("g1", "ignore")
    proc = subprocess.Popen([sys.executable, "-m", "hivectl", "start", "-f", "g1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = host.wait_running("g1", proc, timeout=20)["pid"]
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: "stop signal received" in (guest / "vm-bhyve.log").read_text(), what="first signal")
        time.sleep(0.5)
        assert bhyve_pid(host, "g1") == pid, "the guest ignores the power button"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert_clean(host, "g1")
    assert "forcing power-off" in (guest / "vm-bhyve.log").read_text()


def test_foreground_start_failures_are_reported(host: Any) -> None:
    make_guest(host)
    host.loader_exit("g1", 2)
    result = hivectl("start", "-f", "g1", input_text="")
    assert result.status == 1
    assert result.err.startswith("hivectl: g1: loader bhyveload exited with status 2"), result.err
    assert_clean(host, "g1")
    assert hivectl("start", "g1").status == 0
    result = hivectl("start", "-f", "g1", input_text="")
    assert result.status == 1 and "already Running" in result.err, result.err
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
