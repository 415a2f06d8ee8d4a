"""Restart back-off for instant reboot loops.

A guest that reboots as soon as it boots (a broken boot loader, a kernel that panics and resets, a
firmware that cannot find its disk) used to be booted again at once, forever: 56 boots in 12 s in issue
10's reproduction, each one re-running the loader and rewriting the logs. vm-bhyve has the same loop (its
``_run`` reboots whenever bhyve exits with status 0, vm-bhyve's lib/vm-run). hivectl keeps booting such a
guest, as vm-bhyve would, but once ``RAPID_LIMIT`` boots in a row each lasted less than ``RAPID_BOOT``
seconds it waits before the next boot: ``FIRST_DELAY`` seconds, doubling each further rapid boot up to
``MAX_DELAY``. One boot that lasts longer ends the loop and the back-off starts over. No configuration
key: the figures are documented (docs/reliability.md) and vm-bhyve's keys keep their meaning.
"""

from __future__ import annotations

from hivectl.records import record

RAPID_BOOT = 10.0  # seconds: a boot shorter than this counts as "instant"
RAPID_LIMIT = 3  # instant boots in a row before the first wait
FIRST_DELAY = 1.0  # seconds of the first wait
MAX_DELAY = 60.0  # the cap of the doubling


@record
class RebootLoop:
    """Counts instant boots in a row and says how long to wait before the next one."""

    rapid: int = 0

    def after_boot(self, lasted: float) -> float:
        """Seconds to wait before booting again, after a boot that lasted ``lasted`` seconds (0: none)."""
        if lasted >= RAPID_BOOT:
            self.rapid = 0
            return 0.0
        self.rapid += 1
        if self.rapid < RAPID_LIMIT:
            return 0.0
        return float(min(FIRST_DELAY * 2.0 ** (self.rapid - RAPID_LIMIT), MAX_DELAY))
