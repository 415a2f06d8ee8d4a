"""hivectld's replication scheduler: a thread that runs the due jobs (hivectl/replicate/run.py) every
``interval`` seconds, as cron's ``hivectl replicate --run-due`` would each minute.

Both may run at once (an administrator's cron line left in place): a job already running is skipped by
the run's own lock, so nothing is done twice. A failing run is recorded in the job's status by the run;
anything else that goes wrong is logged, and the thread goes on at the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LOG = logging.getLogger("hivectl.replicate")
TICK = 30.0


class Scheduler:
    """The thread; :meth:`stop` ends it after the run under way, if any."""

    def __init__(self, vm_dir: str | None, driver: str | None, interval: float = TICK) -> None:
        self.vm_dir = vm_dir
        self.driver = driver
        self.interval = interval
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hivectl-replicate", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        from hivectl.context import Context
        from hivectl.replicate.run import run_due

        while not self._stop.wait(self.interval):  # the first tick after one interval, not at start-up
            try:
                for result in run_due(Context(self.driver, self.vm_dir)):
                    if result.error:
                        LOG.warning("replication %s failed: %s", result.job, result.error)
            except Exception:  # a broken jobs file, an unreadable vm_dir: say so, try again next tick
                LOG.exception("replication scheduler")
            self.ticks += 1

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)


@contextmanager
def running(vm_dir: str | None, driver: str | None, interval: float = TICK) -> Iterator[Scheduler]:
    """The scheduler for the ``with`` block (hivectld's lifespan)."""
    scheduler = Scheduler(vm_dir, driver, interval).start()
    try:
        yield scheduler
    finally:
        scheduler.stop()
