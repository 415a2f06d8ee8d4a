"""Fixtures for the tiny-guest tests: one cached build per session and the QEMU runtime.

The build is session-scoped because it is the expensive part (~10 s cold, ~0.3 s from the cache) and
every test boots the same artefacts; each test gets its own disks, OVMF vars and sockets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not put the repo on sys.path
    sys.path.insert(0, str(_ROOT))

import tinyguest  # noqa: E402
from tinyguest import apt  # noqa: E402


def _install_or_skip(packages: dict[str, Callable[[], bool]], what: str) -> None:
    """Install missing packages when we may (root); otherwise skip with the command to run."""
    try:
        apt.ensure_packages(packages, allow_install=os.geteuid() == 0)
    except apt.AptError as exc:
        if os.geteuid() != 0:
            pytest.skip(f"{what}: {exc}")
        raise


@pytest.fixture(scope="session")
def artifacts() -> tinyguest.Artifacts:
    """The guest artefacts from the shared cache (``${XDG_CACHE_HOME:-~/.cache}/hivectl/tinyguest``)."""
    _install_or_skip(apt.BUILD_PACKAGES, "build tools")
    return tinyguest.build()


@pytest.fixture(scope="session")
def qemu_runtime() -> None:
    """qemu-system-x86, qemu-utils and OVMF (installed with apt, no recommends, when missing and root)."""
    _install_or_skip(apt.RUNTIME_PACKAGES, "QEMU runtime")
