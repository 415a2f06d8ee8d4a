"""Fixtures of the storage tests: a scratch vm_dir, a local HTTP server, a ZFS vm_dir on the simulated host."""

from tests.storage.httpserver import fileserver  # noqa: F401
from tests.storage.zfsfixture import zfsvm  # noqa: F401
