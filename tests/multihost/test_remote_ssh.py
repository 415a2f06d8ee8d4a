"""The ssh command line itself (hivectl/remote/ssh.py), run for real without a bed: even a destination that
got past every check of hivectl/remote/config.py could not be read by ssh as an option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hivectl.remote import ssh
from hivectl.remote.config import RemoteSpec


def test_a_hostile_host_is_never_an_option(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    host = f"-oProxyCommand=touch${{IFS}}{canary}"  # what config.py refuses; built here directly
    spec = RemoteSpec("evil", f"ssh://{host}", None, host, None)
    argv = ssh.argv(spec, ["_serve"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "HIVECTL_SSH_CONTROL": "no"})
    assert not canary.exists(), "ssh ran the ProxyCommand: the host was read as an option"
    assert done.returncode == 255, done
    assert argv[argv.index("--") + 1] == host


def test_the_remote_command_is_quoted_for_the_remote_shell() -> None:
    spec = RemoteSpec("r", "ssh://h", None, "h", None, command="/opt/hive ctl")  # no check: quoting alone
    assert ssh.argv(spec, ["_stream", "x;y"])[-1] == "'/opt/hive ctl' _stream 'x;y'"


def test_control_sockets_only_in_a_private_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert ssh.control_dir() == tmp_path / "hivectl-ssh"
    (tmp_path / "hivectl-ssh").chmod(0o755)  # opened to others: another user could plant a master there
    assert ssh.control_dir() is None
    assert "ControlPath=none" in ssh.argv(RemoteSpec("r", "ssh://h", None, "h", None), ["_serve"])
