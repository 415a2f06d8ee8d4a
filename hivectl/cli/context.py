"""What every command needs, built lazily so that cheap commands stay cheap."""

from __future__ import annotations

import sys
from functools import cached_property

from hivectl.host.base import Host
from hivectl.hostconf import HostSettings, load_settings
from hivectl.plan import Plan
from hivectl.store import Store


class Context:
    """Settings, host and store for one invocation; also where plans are applied or printed."""

    def __init__(self, driver: str | None = None, vm_dir: str | None = None) -> None:
        self.driver_option = driver
        self.vm_dir_option = vm_dir

    @cached_property
    def host(self) -> Host:
        from hivectl.host.local import LocalHost

        return LocalHost()

    @cached_property
    def settings(self) -> HostSettings:
        return load_settings(self.vm_dir_option)

    @cached_property
    def store(self) -> Store:
        store = Store(self.settings, self.host)
        return store

    @cached_property
    def driver(self) -> str:
        from hivectl.platforms import default_driver

        return default_driver(self.driver_option)

    def execute(self, plan: Plan, dry_run: bool) -> None:
        """Print the plan (``--dry-run``) or apply it."""
        if dry_run:
            for line in plan.lines():
                sys.stdout.write(line + "\n")
            return
        plan.apply(self.host)
