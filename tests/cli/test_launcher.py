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


# Standard-library modules that cost more to import than ``list`` spends on a small host
# (benchmarks/README.md): a stopped host's ``list`` must import none of them.
HEAVY = ("argparse", "re", "pathlib", "dataclasses", "typing", "functools", "json", "subprocess", "shlex",
         "tempfile", "contextlib", "enum", "collections")


def _list_imports(tmp_path: Path, *args: str, guests: int = 3) -> set[str]:
    vm = tmp_path / "vm"
    (vm / ".config").mkdir(parents=True)
    (vm / ".config" / "system.conf").write_text(f'datastore_list="extra"\npath_extra="{tmp_path / "extra"}"\n')
    (tmp_path / "extra").mkdir()
    for n in range(guests):
        (vm / f"g{n}").mkdir(exist_ok=True)
        (vm / f"g{n}" / f"g{n}.conf").write_text('loader="bhyveload"\ncpu=2\nmemory=1G # comment\n')
    (tmp_path / "rc.conf").write_text('vm_enable="YES"\nvm_list="g1 g0"\nvm_dir="/nonexistent"\n')
    done = run("list", *args, PYTHONPROFILEIMPORTTIME="1", HIVECTL_VM_DIR=str(vm),
               HIVECTL_RC_CONF=str(tmp_path / "rc.conf"), HIVECTL_PLATFORM="linux")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == guests + 1 and "Yes [2]" in done.stdout, done.stdout
    return imported(done.stderr)


def test_list_of_stopped_guests_imports_nothing_heavy(tmp_path: Path) -> None:
    modules = _list_imports(tmp_path)
    assert "hivectl.ops.listing" in modules
    assert sorted(modules & set(HEAVY)) == []


def test_list_with_a_running_guest_still_works_and_would_be_seen(tmp_path: Path) -> None:
    """The check above can fail: a guest with a run lock makes ``list`` read its state (hivectl.runtime),
    which imports pathlib and dataclasses, and the same import log shows them."""
    (tmp_path / "vm" / "g0").mkdir(parents=True)
    (tmp_path / "vm" / "g0" / "run.lock").write_text("otherhost\n")
    modules = _list_imports(tmp_path, guests=3)
    assert "hivectl.runtime" in modules and "pathlib" in modules
