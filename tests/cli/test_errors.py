"""How the CLI fails: one line instead of a traceback, exit 1 when interrupted, and a non-root ``list``.

Moved from tests/test_review_fixes.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli_helpers import hivectl

REPO = Path(__file__).resolve().parents[2]


def test_non_root_list_shows_guests_whose_config_it_cannot_read(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    python = Path("/usr/bin/python3")
    if os.getuid() != 0 or setpriv is None or not python.exists():
        pytest.skip("needs root, setpriv and a system python3 to run hivectl as another user")
    scratch = Path(tempfile.mkdtemp(prefix="hivectl-nonroot."))
    try:
        scratch.chmod(0o755)
        root = scratch / "vm"
        env = {"HIVECTL_VM_DIR": str(root), "HIVECTL_RC_CONF": str(scratch / "rc.conf"), "HIVECTL_PLATFORM": "linux"}
        (scratch / "rc.conf").write_text("")
        root.mkdir()
        assert hivectl("init", env=env).status == 0
        for name, extra in (("open", ""), ("closed", 'vnc_password="x"\n')):
            (root / name).mkdir()
            (root / name / f"{name}.conf").write_text(f'loader="bhyveload"\ncpu="2"\nmemory="1G"\n{extra}')
        (root / "closed" / "closed.conf").chmod(0o600)
        (root / "lost+found").mkdir(mode=0o700)
        done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", str(python), "-m",
                               "hivectl", "list", "--json"], capture_output=True, text=True, check=False,
                              env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd="/")
        assert done.returncode == 0, done.stderr
        rows = {r["name"]: r for r in json.loads(done.stdout)}
        assert set(rows) == {"open", "closed"}
        assert rows["open"]["cpu"] == "2" and rows["closed"]["cpu"] == "" and rows["closed"]["state"] == "Stopped"
    finally:
        shutil.rmtree(scratch)


def test_errors_are_one_line_not_tracebacks(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "g1").status == 0
    conf = vmdir / "g1" / "g1.conf"
    before = conf.read_bytes()
    cases = [
        (["configure", "g1"], {"EDITOR": str(tmp_path / "no-such-editor")}, "cannot run the editor"),
        (["configure", "g1"], {"EDITOR": 'vi "unbalanced'}, "cannot be split into words"),
        (["restore", str(tmp_path / "missing.backup.tar.gz")], {}, "No such file or directory"),
        (["backup", "--to", str(conf), "g1"], {}, "Not a directory"),
    ]
    garbage = tmp_path / "garbage.tar"
    garbage.write_text("this is not a tar file\n")
    cases.append((["restore", str(garbage)], {}, "not a hivectl backup"))
    gz = tmp_path / "garbage.tar.gz"
    gz.write_bytes(b"\x1f\x8b" + b"not really gzip" * 4)
    cases.append((["restore", str(gz)], {}, "not a hivectl backup"))
    for args, env, expected in cases:
        result = hivectl(*args, env=env, input_text="")
        assert result.status == 1, (args, result.err)
        assert "Traceback" not in result.err, (args, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hivectl: ") and expected in lines[0], (args, result.err)
    assert conf.read_bytes() == before
    assert sorted(p.name for p in (vmdir / "g1").iterdir()) == ["disk0.img", "g1.conf"]


def test_interrupted_command_exits_1(vmdir: Path, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "g1").status == 0
    started = tmp_path / "started"
    editor = tmp_path / "editor"
    editor.write_text(f'#!/bin/sh\ntouch {started}\nexec sleep 30\n')
    editor.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "hivectl", "configure", "g1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EDITOR": str(editor)})
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert err == "hivectl: interrupted\n"
