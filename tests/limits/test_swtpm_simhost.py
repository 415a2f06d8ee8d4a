"""tpm="swtpm" on the simulated FreeBSD host: hivectl starts swtpm before bhyve (whose stand-in checks the
socket as bhyve does: exit 4, "Failed to init TPM device", without it), keeps it across reboots, and stops
it with the guest, a killed supervisor's stale run included."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from hivectl.host import identity
from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, state_of, wait_for

UEFI = {"loader": "uefi", "tpm": "swtpm"}


def test_a_tpm_guest_boots_with_its_swtpm_which_outlives_reboots_and_ends_with_the_guest(host: Any) -> None:
    guest = make_guest(host, **UEFI)
    dry = hivectl("start", "--dry-run", "g1")
    swtpm_line = ["swtpm", "socket", "--tpmstate", f"dir={guest}/tpm", "--ctrl",
                  f"type=unixio,path={guest}/swtpm.sock", "--tpm2", "--pid", f"file={guest}/swtpm.pid"]
    lines = dry.out.splitlines()
    assert json.dumps(swtpm_line) in lines, dry.out
    bhyve = next(n for n, line in enumerate(lines) if line.startswith('["bhyve"'))
    assert lines.index(json.dumps(swtpm_line)) < bhyve and f"tpm,swtpm,{guest}/swtpm.sock" in lines[bhyve]
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    tpms = host.swtpms()
    assert len(tpms) == 1 and next(iter(tpms.values()))["socket"] == f"{guest}/swtpm.sock"
    assert (guest / "tpm" / "tpm2-00.permall").exists(), "the TPM's state is kept in the guest's directory"
    first = set(tpms)
    host.exit_guest("g1", 0)  # reboot: the same swtpm serves the new bhyve
    wait_for(lambda: (p := bhyve_pid(host, "g1")) and p != pid, what="the reboot")
    assert set(host.swtpms()) == first
    assert hivectl("stop", "g1").status == 0
    assert host.swtpms() == {} and not (guest / "swtpm.sock").exists() and not (guest / "swtpm.pid").exists()
    assert (guest / "tpm" / "tpm2-00.permall").exists(), "the TPM's state outlives the run"
    assert state_of("g1")["state"] == "Stopped"


def test_a_dead_swtpm_is_started_again_at_the_next_boot(host: Any) -> None:
    guest = make_guest(host, **UEFI)
    assert hivectl("start", "g1").status == 0
    pid = wait_for(lambda: bhyve_pid(host, "g1"))
    (old,) = host.swtpms()
    os.kill(int(old), signal.SIGKILL)
    wait_for(lambda: identity.identify(int(old)) is None, what="swtpm's death")
    host.exit_guest("g1", 0)
    wait_for(lambda: (p := bhyve_pid(host, "g1")) and p != pid, what="the reboot with a new swtpm")
    (new,) = host.swtpms()
    assert new != old and (guest / "swtpm.pid").read_text().strip() == new
    assert hivectl("stop", "g1").status == 0 and host.swtpms() == {}


def test_a_killed_supervisors_swtpm_is_stopped_with_its_stale_run(host: Any) -> None:
    guest = make_guest(host, **UEFI)
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: bhyve_pid(host, "g1"))
    assert len(host.swtpms()) == 1
    supervisor = json.loads((guest / "hivectl.state").read_text())["supervisor"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: identity.identify(supervisor) is None, what="the supervisor's death")
    assert hivectl("poweroff", "-f", "g1").status == 0
    assert host.swtpms() == {} and not (guest / "swtpm.sock").exists()


def test_without_swtpm_bhyve_refuses_as_it_does(host: Any) -> None:
    """swtpm that cannot start is a failed start, in one line, with nothing left running."""
    guest = make_guest(host, **UEFI)
    (guest / "tpm").write_text("not a directory")
    result = hivectl("start", "g1")
    assert result.status == 1 and "tpm" in result.err, result.err
    assert host.swtpms() == {} and not host.running()


def test_tpm_passthru_needs_dev_tpm0(host: Any) -> None:
    make_guest(host, loader="uefi", tpm="passthru")
    host.path("/dev/tpm0").unlink()
    result = hivectl("start", "g1")
    assert result.status == 1 and "tpm=passthru but /dev/tpm0 does not exist" in result.err, result.err
