"""The Python API: what the CLI does, as calls that return data and raise ``HivectlError``.

For scripts, configuration management and monitoring that would otherwise parse ``hivectl`` output::

    from hivectl.api import Hivectl

    hv = Hivectl()                      # vm_dir from rc.conf / /etc/hivectl.conf / HIVECTL_VM_DIR
    hv.create("web1", template="debian", size="30G", cpu="2", memory="2G")
    hv.start("web1")
    for row in hv.guests():
        print(row["name"], row["state"])
    hv.stop(["web1"], timeout=60)

Every method goes through the same operations and plans as the command line, so validation, locking,
rollback on failure and the supervisor are identical; ``dry_run=True`` returns the planned host commands
(lists of strings) instead of changing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivectl.context import Context
from hivectl.drivers import get_driver
from hivectl.drivers.base import Driver
from hivectl.plan import Plan


class Hivectl:
    """One host's hivectl: its vm_dir, datastores, guests and driver."""

    def __init__(self, vm_dir: str | Path | None = None, driver: str | None = None) -> None:
        self._ctx = Context(driver, str(vm_dir) if vm_dir is not None else None)

    # -- plumbing ------------------------------------------------------------------------------------------
    def _run(self, plan: Plan, dry_run: bool) -> list[list[str]]:
        if dry_run:
            return [action.argv() for action in plan.actions]
        plan.apply(self._ctx.host)
        return []

    @property
    def driver(self) -> Driver:
        return get_driver(self._ctx.driver, self._ctx.host, self._ctx.store)

    # -- host ----------------------------------------------------------------------------------------------
    def init(self, dry_run: bool = False) -> list[list[str]]:
        from hivectl.ops.system import plan_init

        return self._run(plan_init(self._ctx.store, self._ctx.host), dry_run)

    def templates(self) -> list[str]:
        return self._ctx.store.templates()

    # -- guests --------------------------------------------------------------------------------------------
    def guests(self, running_only: bool = False, tag: str | None = None) -> list[dict[str, Any]]:
        """The rows of ``hivectl list --json``."""
        from hivectl.ops.listing import list_guests

        return [row.as_json() for row in list_guests(self._ctx.store, running_only, tag)]

    def info(self, name: str) -> dict[str, Any]:
        """What ``hivectl info --json NAME`` prints."""
        from hivectl.ops.listing import guest_info

        return guest_info(self._ctx.store, self._ctx.store.get(name))

    def create(self, name: str, template: str = "default", datastore: str = "default", size: str | None = None,
               cpu: str | None = None, memory: str | None = None, dry_run: bool = False) -> list[list[str]]:
        from hivectl.ops.guests import CreateRequest, plan_create

        self._ctx.store.require_initialised()
        plan, _ = plan_create(self._ctx.store, CreateRequest(name, template, datastore, size, cpu, memory))
        return self._run(plan, dry_run)

    def set(self, name: str, dry_run: bool = False, **keys: str) -> list[list[str]]:
        """Change guest configuration keys (validated first, written atomically)."""
        from hivectl.ops.guests import plan_set_keys

        return self._run(plan_set_keys(self._ctx.store.get(name), keys), dry_run)

    def rename(self, name: str, new: str, dry_run: bool = False) -> list[list[str]]:
        from hivectl.ops.guests import plan_rename

        return self._run(plan_rename(self._ctx.store, self._ctx.store.get(name), new), dry_run)

    def destroy(self, name: str, dry_run: bool = False) -> list[list[str]]:
        from hivectl.ops.guests import plan_destroy

        return self._run(plan_destroy(self._ctx.store.get(name)), dry_run)

    # -- running -------------------------------------------------------------------------------------------
    def start(self, name: str, install: str | Path | None = None) -> int:
        """Start a guest under its supervisor; returns the hypervisor's pid."""
        from hivectl.runner import control

        started = control.start(self._ctx.store.get(name), self._ctx.driver,
                                Path(install) if install is not None else None)
        return started.pid

    def stop(self, names: list[str], timeout: float = 90.0) -> list[str]:
        """ACPI shutdown, wait, then force; returns notes about guests that had to be forced."""
        from hivectl.runner import control

        refs = [self._ctx.store.get(n) for n in names]
        return control.stop(self._ctx.host, self.driver, refs, timeout)
