"""No secret echoed anywhere, valid or not: stderr, ``info`` (text and JSON), dry runs and the guest's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import hivectl

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize("driver", ["qemu", "bhyve"])
@pytest.mark.parametrize("password", [SECRET, f"{SECRET},x", f",{SECRET}", f"{SECRET}\u2028x"])
def test_a_vnc_password_is_never_shown(vmdir: Path, driver: str, password: str) -> None:
    """An invalid password (',' would add a bhyve fbuf option) used to be quoted in every error line."""
    assert hivectl("create", "-s", "1M", "v").status == 0
    conf = vmdir / "v" / "v.conf"
    conf.write_text(conf.read_text() + f'graphics="yes"\nvnc_password="{password}"\n')
    valid = "," not in password and "\u2028" not in password
    seen = []
    commands = [["info", "v"], ["info", "--json", "v"], ["list"], ["start", "--dry-run", "v"]]
    if not valid:  # refused before any hypervisor runs (a valid one would boot a real VM: tests/e2e)
        commands.append(["start", "v"])
    for args in commands:
        done = hivectl("--driver", driver, *args)
        seen.append(done.out + done.err)
        if not valid and args[0] == "start":
            assert done.status == 1 and "vnc_password=(hidden)" in done.err, done.err
    log = vmdir / "v" / "vm-bhyve.log"
    if log.exists():
        seen.append(log.read_text())
    for text in seen:
        assert SECRET not in text, text
    if not valid:
        assert any("vnc_password=(hidden)" in text for text in seen)
