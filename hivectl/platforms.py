"""Which platform and which driver this invocation runs with (overridable for tests and scripts)."""

from __future__ import annotations

import os
import sys

from hivectl.errors import UsageError

PLATFORMS = ("freebsd", "linux")
DRIVERS = ("bhyve", "qemu")


def current_platform() -> str:
    """``freebsd`` or ``linux``: ``HIVECTL_PLATFORM`` wins, so the simulated FreeBSD host can run on Linux."""
    forced = os.environ.get("HIVECTL_PLATFORM", "")
    if forced:
        if forced not in PLATFORMS:
            raise UsageError(f"HIVECTL_PLATFORM={forced!r}: expected one of {', '.join(PLATFORMS)}")
        return forced
    return "freebsd" if sys.platform.startswith("freebsd") else "linux"


def default_driver(option: str | None = None) -> str:
    """The driver from ``--driver``, then ``HIVECTL_DRIVER``, then the platform (bhyve on FreeBSD)."""
    choice = option or os.environ.get("HIVECTL_DRIVER", "")
    if choice:
        if choice not in DRIVERS:
            raise UsageError(f"driver {choice!r}: expected one of {', '.join(DRIVERS)}")
        return choice
    return "bhyve" if current_platform() == "freebsd" else "qemu"
