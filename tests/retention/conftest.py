"""Fixtures of the retention tests: a vm_dir on the simulated host's ZFS."""

from tests.storage.zfsfixture import zfsvm  # noqa: F401
