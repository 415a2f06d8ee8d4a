"""Shared pytest fixtures (the simulated FreeBSD host in tests/simhost) and the ``vm`` marker.

Tests that boot real virtual machines are marked ``vm`` by where they live, so that a new file in one of
those places is marked without anyone remembering to: ``./scripts/test -m "not vm"`` runs everything else
(README.md, "Running the tests"). CI runs the whole suite, marked tests included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lifecycle_helpers import host  # noqa: F401
from tests.simhost.fixture import simhost  # noqa: F401
from tests.vmdir_fixture import vmdir  # noqa: F401

_TESTS = Path(__file__).resolve().parent

# Folders and files (relative to tests/) whose tests boot real guests under QEMU or build the tiny guest.
VM_PATHS: tuple[str, ...] = (
    "e2e",
    "tinyguest",
    "qemu/test_real_boots.py",
)


def is_vm_test(path: Path) -> bool:
    """True when the test file at ``path`` lies under one of ``VM_PATHS``."""
    try:
        relative = path.resolve().relative_to(_TESTS)
    except ValueError:
        return False
    return any(relative == Path(p) or Path(p) in relative.parents for p in VM_PATHS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from a ``VM_PATHS`` location with ``vm``."""
    for item in items:
        if is_vm_test(Path(str(item.path))):
            item.add_marker(pytest.mark.vm)
