"""Shared pytest fixtures (the simulated FreeBSD host in tests/simhost) and the ``vm`` marker.

Tests that boot real virtual machines are marked ``vm`` by where they live, so that a new file in one of
those places is marked without anyone remembering to: ``./scripts/test -m "not vm"`` runs everything else
(README.md, "Running the tests"). CI runs the whole suite, marked tests included.

CI runs it on two pytest-xdist workers (``scripts/test``: ``-n 2 --dist loadgroup``). The tests that run
real QEMU processes on the host are put in one ``xdist_group``, so they still run one after another on one
worker while the other worker takes the rest: a TCG boot keeps a core busy (two at once on a 2-core machine
starve each other's timeouts), and a QEMU's ``-name`` is host-wide (hivectl's QEMU driver refuses to start
a guest when a QEMU of that name runs that it did not record, ``foreign_processes``), so two workers
booting guests of one name would each see the other's as foreign. Everything else is per test: its own
tmp tree, simulated host, network namespaces (random names), taps named after the worker's pid.
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
    "metrics/test_qemu_guest.py",
    "suspend/test_qemu_suspend.py",
    "limits/test_qemu_real.py",
    "web/test_console_qemu.py",
    "multihost/test_migrate_qemu.py",
    "multihost/test_migrate_zfs_qemu.py",
)


# Where tests run real QEMU processes on the host: the VM tests, plus QEMU started paused (-S) and QMP.
QEMU_PATHS: tuple[str, ...] = (
    *VM_PATHS,
    "qemu/test_qemu_accepts.py",
    "qemu/test_qmp.py",
)
QEMU_GROUP = "qemu"


def _under(path: Path, places: tuple[str, ...]) -> bool:
    try:
        relative = path.resolve().relative_to(_TESTS)
    except ValueError:
        return False
    return any(relative == Path(p) or Path(p) in relative.parents for p in places)


def is_vm_test(path: Path) -> bool:
    """True when the test file at ``path`` lies under one of ``VM_PATHS``."""
    return _under(path, VM_PATHS)


def runs_qemu(path: Path) -> bool:
    """True when the test file at ``path`` lies under one of ``QEMU_PATHS`` (one xdist group)."""
    return _under(path, QEMU_PATHS)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from a ``VM_PATHS`` location with ``vm``, and every test that runs QEMU
    with ``xdist_group("qemu")`` (see the module docstring)."""
    for item in items:
        path = Path(str(item.path))
        if is_vm_test(path):
            item.add_marker(pytest.mark.vm)
        if runs_qemu(path):
            item.add_marker(pytest.mark.xdist_group(QEMU_GROUP))
