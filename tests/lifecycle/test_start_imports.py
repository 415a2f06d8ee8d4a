"""What ``hivectl start`` has imported when it execs the hypervisor (issue 9.7: under 50 ms of hivectl's own
time from ``start`` to that exec; benchmarks/README.md, "start, third pass").

A real ``start`` of a QEMU guest runs in a fresh interpreter started like ``bin/hivectl`` (``python3 -S``),
with a stand-in ``qemu-system-x86_64`` first on PATH. An audit hook (``sys.addaudithook``, which a fork
inherits) writes the names in ``sys.modules`` to a file at the ``subprocess.Popen`` audit event of the
hypervisor: the forked supervisor's modules at the moment it spawns QEMU, which include everything the
command line imported before the fork. Nothing of hivectl is replaced; the hook only reads.

The modules below cost milliseconds each and none of them is needed before the exec: ``dataclasses``
(with ``inspect``, ``ast``, ``dis``: hivectl's records are ``hivectl.records``), ``typing`` (annotations
only: ``TYPE_CHECKING = False``), the QMP client's ``socket`` (its watcher connects after the exec),
``tempfile`` and ``shutil`` (with ``random``, ``bz2``, ``lzma``), ``hashlib``, ``secrets``, ``gzip``,
``datetime`` and ``argparse``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BANISHED = ("dataclasses", "inspect", "ast", "dis", "typing", "socket", "tempfile", "shutil", "random",
            "bz2", "lzma", "hashlib", "secrets", "gzip", "datetime", "argparse")

# The harness: run ``hivectl start NAME`` as bin/hivectl would, recording sys.modules at the hypervisor's spawn.
HARNESS = """
import sys
out, name = sys.argv[1], sys.argv[2]
def hook(event, args):
    if event == "subprocess.Popen" and str(args[0]).endswith("qemu-system-x86_64"):
        with open(out, "w") as f:
            f.write("\\n".join(sorted(sys.modules)))
sys.addaudithook(hook)
from hivectl.cli.main import main
sys.exit(main(["start", name]))
"""

STAND_IN = "#!/bin/sh\nsleep 2\nexit 0\n"  # a QEMU that runs briefly and powers off


def start_modules(tmp_path: Path, preload: str = "") -> set[str]:
    vm = tmp_path / "vm"
    guest = vm / "g1"
    (vm / ".config").mkdir(parents=True)
    (vm / ".config" / "system.conf").write_text("")
    guest.mkdir()
    (guest / "g1.conf").write_text('loader="grub"\ncpu=1\nmemory=64M\nqemu_kernel="kernel"\n')
    (guest / "kernel").write_text("")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "qemu-system-x86_64").write_text(STAND_IN)
    (bindir / "qemu-system-x86_64").chmod(0o755)
    out = tmp_path / "modules.txt"
    env = {**os.environ, "HIVECTL_VM_DIR": str(vm), "HIVECTL_RC_CONF": str(tmp_path / "rc.conf"),
           "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg",
           "PYTHONPATH": str(REPO), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-S", "-c", preload + HARNESS, str(out), "g1"], env=env,
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "g1: started" in done.stdout, done.stdout
    deadline = time.monotonic() + 30
    while (guest / "run.lock").exists() and time.monotonic() < deadline:  # the stand-in powers off; cleanup
        time.sleep(0.1)
    assert not (guest / "run.lock").exists(), "the supervisor did not clean up after its stand-in QEMU"
    return set(out.read_text().split())


def test_start_imports_nothing_banished_before_the_hypervisor_exec(tmp_path: Path) -> None:
    modules = start_modules(tmp_path)
    # The record is the supervisor's, taken at QEMU's spawn: planned, driven and about to exec.
    assert {"hivectl.runner.supervisor", "hivectl.drivers.qemu.argv", "hivectl.model.keys"} <= modules
    assert sorted(modules & set(BANISHED)) == []


def test_a_banished_module_would_be_seen(tmp_path: Path) -> None:
    """The check above can fail: the same record names a banished module once something imports it."""
    modules = start_modules(tmp_path, preload="import dataclasses, typing\n")
    assert {"dataclasses", "inspect", "typing"} <= modules
