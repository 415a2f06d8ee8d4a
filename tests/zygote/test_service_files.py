"""The rc.d script and the systemd unit of ``hivectl zygote``: they parse, ship as package data, run the
server under a supervisor that restarts it, and never take its children (commands, supervisors) down."""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
from pathlib import Path

from tests.daemon.test_service_files import RC_SUBR


def test_rc_d_script_runs_the_zygote_under_daemon8_with_the_flags(tmp_path: Path) -> None:
    script = importlib.resources.files("hivectl").joinpath("rc.d/hivectl_zygote")
    assert script.is_file()
    sh = shutil.which("dash") or "/bin/sh"
    assert subprocess.run([sh, "-n", str(script)], check=False).returncode == 0
    stub = tmp_path / "rc.subr"
    stub.write_text(RC_SUBR)
    rc_conf = tmp_path / "rc.conf"
    rc_conf.write_text('hivectl_zygote_enable="YES"\nhivectl_zygote_flags="--group wheel"\n')
    local = tmp_path / "hivectl_zygote"
    local.write_text(script.read_text().replace(". /etc/rc.subr", f". {stub}"))
    done = subprocess.run([sh, str(local), "start"], capture_output=True, text=True, check=False,
                          env={"RC_CONF": str(rc_conf), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    command, pidfile = done.stdout.splitlines()
    assert command.startswith("/usr/sbin/daemon -r -P /var/run/hivectl_zygote.pid")
    assert command.endswith("/usr/local/bin/hivectl zygote --group wheel")
    assert pidfile == "pidfile=/var/run/hivectl_zygote.pid"


def test_systemd_unit_runs_the_zygote_and_leaves_its_children_running() -> None:
    unit = importlib.resources.files("hivectl").joinpath("systemd/hivectl-zygote.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["ExecStart"].split()[:2] == ["/usr/local/bin/hivectl", "zygote"]
    assert keys["KillMode"] == "process"  # the commands it serves and their supervisors are its children
    assert keys["Restart"] == "always"
    assert keys["WantedBy"] == "multi-user.target"


def test_help_says_what_the_server_is_for_its_options_and_its_defaults() -> None:
    """``hivectl zygote --help`` is the administrator's page: what it does, each option, the default socket,
    the variable that switches it off, and how to run it at boot."""
    from hivectl.cli.zygote import DEFAULT_SOCKET, SOCKET_ENV

    shown = subprocess.run([str(Path(__file__).resolve().parents[2] / "bin" / "hivectl"), "zygote", "--help"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("usage: hivectl zygote [--socket PATH] [--group NAME]\n")
    for needed in ("Run the start-up server", "--socket PATH", "--group NAME", DEFAULT_SOCKET, f"{SOCKET_ENV}=off",
                   "hivectl/rc.d/hivectl_zygote", "hivectl/systemd/hivectl-zygote.service"):
        assert needed in text, (needed, text)
    assert "``" not in text, "reStructuredText from a docstring is not help"
