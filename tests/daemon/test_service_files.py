"""The rc.d script and the systemd unit that start hivectld: they parse, ship, and pass the right things.

The rc.d script is run under a stand-in ``rc.subr`` that records what ``run_rc_command`` would start, so
the test sees the command line rc(8) would run; the unit is read as systemd reads its key=value lines.
"""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
from pathlib import Path

RC_SUBR = """\
load_rc_config() { [ -f "$RC_CONF" ] && . "$RC_CONF"; }
run_rc_command() { printf '%s\\n' "$command $command_args"; printf 'pidfile=%s\\n' "$pidfile"; }
"""


def test_rc_d_script_starts_the_daemon_under_daemon8_with_the_flags(tmp_path: Path) -> None:
    script = importlib.resources.files("hivectl").joinpath("rc.d/hivectld")
    assert script.is_file()
    sh = shutil.which("dash") or "/bin/sh"
    assert subprocess.run([sh, "-n", str(script)], check=False).returncode == 0
    stub = tmp_path / "rc.subr"
    stub.write_text(RC_SUBR)
    rc_conf = tmp_path / "rc.conf"
    rc_conf.write_text('hivectld_enable="YES"\nhivectld_flags="--listen 192.0.2.1:8443 --workers 2"\n')
    text = script.read_text().replace(". /etc/rc.subr", f". {stub}")
    local = tmp_path / "hivectld"
    local.write_text(text)
    done = subprocess.run([sh, str(local), "start"], capture_output=True, text=True, check=False,
                          env={"RC_CONF": str(rc_conf), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    command, pidfile = done.stdout.splitlines()
    assert command.startswith("/usr/sbin/daemon -r -P /var/run/hivectld.pid")
    assert command.endswith("/usr/local/bin/hivectld --listen 192.0.2.1:8443 --workers 2")
    assert pidfile == "pidfile=/var/run/hivectld.pid"


def test_systemd_unit_runs_hivectld_and_leaves_guests_running() -> None:
    unit = importlib.resources.files("hivectl").joinpath("systemd/hivectld.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["ExecStart"].split()[0].endswith("/hivectld")
    # Guests' supervisors are the daemon's children: the default KillMode would stop them with it.
    assert keys["KillMode"] == "process"
    assert keys["WantedBy"] == "multi-user.target"
