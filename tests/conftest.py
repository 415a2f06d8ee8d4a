"""Shared pytest fixtures: the simulated FreeBSD host (tests/simhost)."""

from tests.lifecycle_helpers import host  # noqa: F401
from tests.simhost.fixture import simhost  # noqa: F401
from tests.vmdir_fixture import vmdir  # noqa: F401
