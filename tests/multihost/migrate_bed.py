"""Two simulated FreeBSD hosts for the migration tests, without a network.

The source is the ``host`` fixture (tests/lifecycle_helpers.py: the simulated host of tests/simhost with an
initialised vm_dir and a ``public`` switch). The target is a second simulated host with its own root, vm_dir
and rc.conf, reached through a small executable that sets its environment and runs this checkout's hivectl:
``hivectl migrate NAME exec:WRAPPER`` then talks to it exactly as it would talk to ``ssh HOST hivectl``
(the same ``_stream`` words over the same pipes), which tests/multihost/conftest.py's namespace hosts do
over a real sshd.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cli_helpers import REPO, Outcome, hivectl
from tests.simhost.fixture import SimHost, create_host


class OtherHost:
    """The second host: ``run`` is its hivectl, ``wrapper`` the command that reaches it."""

    def __init__(self, base: Path, name: str = "b", zfs: bool = False) -> None:
        self.root = base / f"simhost-{name}"
        create_host(self.root)
        self.sim = SimHost(self.root)
        self.rc = base / f"rc-{name}.conf"
        self.env = {"SIMHOST_ROOT": str(self.root), "HIVECTL_HOST_ROOT": str(self.root),
                    "HIVECTL_RC_CONF": str(self.rc)}
        self.bin = base / f"bin-{name}"  # this host's own commands: hivectl's optional 'vm' entry
        self.bin.mkdir()
        (self.bin / "vm").symlink_to(REPO / "bin" / "vm")
        self.env["PATH"] = os.pathsep.join([str(self.bin), os.environ.get("PATH", "")])
        if zfs:  # vm_dir on the pool's dataset zroot/vm, as on a FreeBSD host with vm-bhyve
            self.rc.write_text('vm_dir="zfs:zroot/vm"\n')
            assert self.command(["zfs", "create", "zroot/vm"]).returncode == 0
            self.vm_dir = self.root / "zroot" / "vm"
        else:
            self.vm_dir = base / f"vm-{name}"
            self.vm_dir.mkdir()
            self.rc.write_text("")
            self.env["HIVECTL_VM_DIR"] = str(self.vm_dir)
        self.log = base / f"commands-{name}.jsonl"
        self.shell = base / f"ssh-{name}"  # runs any command there, as 'ssh HOST COMMAND...', and records it
        lines = ["import json, os, sys", f"os.environ.update({self.env!r})",
                 f"with open({str(self.log)!r}, 'a') as log: log.write(json.dumps(sys.argv[1:]) + '\\n')",
                 "os.execvp(sys.argv[1], sys.argv[1:])"]
        self.shell.write_text(f"#!{sys.executable} -S\n" + "\n".join(lines) + "\n")
        self.shell.chmod(self.shell.stat().st_mode | stat.S_IXUSR)
        self.wrapper = base / f"host-{name}"
        lines = ["import os, sys", f"os.environ.update({self.env!r})",
                 f"os.execv({sys.executable!r}, [{sys.executable!r}, '-S', {str(REPO / 'bin' / 'hivectl')!r}, "
                 "*sys.argv[1:]])"]
        self.wrapper.write_text(f"#!{sys.executable} -S\n" + "\n".join(lines) + "\n")
        self.wrapper.chmod(self.wrapper.stat().st_mode | stat.S_IXUSR)
        assert self.run("init").status == 0

    @property
    def remote(self) -> str:
        return f"exec:{self.wrapper}"

    def command(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        """Run a command on this host (its stand-ins, its environment)."""
        return subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True, text=True, check=False,
                              **options)

    def commands(self) -> list[list[str]]:
        """What was run here through ``shell``, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def run(self, *args: str, timeout: float = 60) -> Outcome:
        return hivectl(*args, env=self.env, timeout=timeout)

    def guests(self) -> dict[str, dict[str, Any]]:
        listed = self.run("list", "--json")
        assert listed.status == 0, listed.err
        return {row["name"]: row for row in listed.json()}

    def entries(self) -> list[str]:
        """Every entry of every datastore directory, hidden staging and tombstones included."""
        return sorted(os.listdir(self.vm_dir))

    def close(self) -> None:
        self.sim.close()
