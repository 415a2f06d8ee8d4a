"""Fixtures: the QEMU scratch vm_dir (tests/qemu/conftest.py) for the real-guest tests."""

from tests.qemu.conftest import scratch

__all__ = ["scratch"]
