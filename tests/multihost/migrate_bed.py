"""Two simulated FreeBSD hosts for the migration tests, without a network.

The source is the ``host`` fixture (tests/lifecycle_helpers.py: the simulated host of tests/simhost with an
initialised vm_dir and a ``public`` switch). The target is a second simulated host with its own root, vm_dir
and rc.conf, reached through a small executable that sets its environment and runs this checkout's hivectl:
``hivectl migrate NAME exec:WRAPPER`` then talks to it exactly as it would talk to ``ssh HOST hivectl``
(the same ``_stream`` words over the same pipes), which tests/multihost/conftest.py's namespace hosts do
over a real sshd.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from tests.cli_helpers import REPO, Outcome, hivectl
from tests.simhost.fixture import SimHost, create_host


class OtherHost:
    """The second host: ``run`` is its hivectl, ``wrapper`` the command that reaches it."""

    def __init__(self, base: Path, name: str = "b") -> None:
        self.root = base / f"simhost-{name}"
        create_host(self.root)
        self.sim = SimHost(self.root)
        self.vm_dir = base / f"vm-{name}"
        self.vm_dir.mkdir()
        self.rc = base / f"rc-{name}.conf"
        self.rc.write_text("")
        self.env = {"SIMHOST_ROOT": str(self.root), "HIVECTL_HOST_ROOT": str(self.root),
                    "HIVECTL_VM_DIR": str(self.vm_dir), "HIVECTL_RC_CONF": str(self.rc)}
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
