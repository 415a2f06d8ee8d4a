"""``bin/hivectl`` runs hivectl without ``site``: no .pth file of any installed package is executed.

The launcher exists for speed (benchmarks/bench_list.py); these tests run it the way a shell does (through
its ``#!`` line, with the interpreter's directory first on PATH) and read the interpreter's own import log
(``PYTHONPROFILEIMPORTTIME``) to see that ``site`` was never imported, from a directory outside the checkout
and without PYTHONPATH, so the launcher has to find the package itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hivectl import __version__

LAUNCHER = Path(__file__).resolve().parents[2] / "bin" / "hivectl"


def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return subprocess.run([str(LAUNCHER), *args], capture_output=True, text=True, check=False, cwd="/", env=env,
                          timeout=60)


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_the_launcher_is_executable_and_runs_hivectl() -> None:
    assert os.access(LAUNCHER, os.X_OK)
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"hivectl {__version__}\n"


def test_the_launcher_never_imports_site(tmp_path: Path) -> None:
    (tmp_path / "vm" / ".config").mkdir(parents=True)
    (tmp_path / "vm" / ".config" / "system.conf").write_text("")
    done = run("list", PYTHONPROFILEIMPORTTIME="1", HIVECTL_VM_DIR=str(tmp_path / "vm"),
               HIVECTL_RC_CONF=str(tmp_path / "rc.conf"), HIVECTL_PLATFORM="linux")
    assert done.returncode == 0, done.stderr
    modules = imported(done.stderr)
    assert "hivectl.cli.main" in modules and "hivectl.ops.listing" in modules
    assert "site" not in modules
    assert not any(m.startswith(("__editable__", "_distutils_hack")) for m in modules)


def test_python_with_site_would_be_seen() -> None:
    """The check above can fail: the same import log of an interpreter started with site names it."""
    done = subprocess.run([sys.executable, "-c", "pass"], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert "site" in imported(done.stderr)
