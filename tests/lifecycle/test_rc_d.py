"""The rc.d script that runs startall/stopall at boot: it parses, and it ships as package data.

Moved from tests/test_lifecycle_more.py (issue 9.6: tests live in their area's folder).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_rc_d_script_parses_and_ships_as_package_data(tmp_path: Path) -> None:
    script = importlib.resources.files("hivectl").joinpath("rc.d/hivectl")
    assert script.is_file()
    dash = shutil.which("dash") or "/bin/sh"
    checked = subprocess.run([dash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    text = script.read_text()
    assert "stopall --timeout" in text and "startall" in text and "run_rc_command" in text
    # What an installation contains: build the package the way pip would (setuptools' build_py, with the
    # project's own package-data rules) into a scratch tree and find the script there with importlib.
    source = tmp_path / "src"
    source.mkdir()
    for item in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / item, source / item)
    shutil.copytree(REPO / "hivectl", source / "hivectl", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "lib"
    done = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d",
                           str(built)], cwd=source, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    probe = ("import importlib.resources as r, os; f = r.files('hivectl').joinpath('rc.d/hivectl'); "
             "print(f, os.access(str(f), os.X_OK))")
    found = subprocess.run([sys.executable, "-S", "-c", probe], cwd=built, capture_output=True, text=True,
                           check=False, env={"PATH": os.environ.get("PATH", "")})
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(built / "hivectl" / "rc.d" / "hivectl"), "True"]
    assert (built / "hivectl" / "rc.d" / "hivectl").read_text() == text
