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

import subprocess
import sys
from pathlib import Path

from tests.lifecycle.qemu_stand_in import NAME, qemu_bed, wait_cleaned_up

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
    env = qemu_bed(tmp_path, STAND_IN)
    out = tmp_path / "modules.txt"
    done = subprocess.run([sys.executable, "-S", "-c", preload + HARNESS, str(out), NAME], env=env,
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{NAME}: started" in done.stdout, done.stdout
    wait_cleaned_up(tmp_path, 30)
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
