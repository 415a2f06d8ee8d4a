"""The checked table of commands: name, implementing module, one-line summary and overview group.

Commands are imported only when used, so ``hivectl list`` does not pay for ``hivectl backup``: an entry names
its module, and ``Command.handlers()`` imports it and returns ``configure_<name>(parser)`` and
``run_<name>(ctx, args) -> int`` (dashes become underscores), refusing an entry whose module lacks either.
tests/test_registry.py resolves every entry this way and fails on a missing handler, a command without
help text, or a ``configure_``/``run_`` pair that no entry names; tests/test_api_coverage.py and
tests/ops/test_dry_run_everywhere.py walk the same table (docs/architecture.md, "Adding a command").
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any, TypeAlias

    Configure: TypeAlias = Callable[[argparse.ArgumentParser], None]
    Run: TypeAlias = Callable[..., int]

# The overview lists commands under these headings, in this order.
GROUPS: tuple[str, ...] = ("host", "guests", "storage", "run", "network", "access")


class Command:
    """One entry of the table. A plain slotted class: ``hivectl list`` should not import ``dataclasses``."""

    __slots__ = ("group", "module", "name", "summary")

    def __init__(self, name: str, module: str, summary: str, group: str) -> None:
        self.name = name
        self.module = module
        self.summary = summary
        self.group = group

    def __repr__(self) -> str:
        return f"Command({self.name!r}, {self.module!r})"

    @property
    def attr(self) -> str:
        """The suffix of the handler names: ``forward-add`` → ``forward_add``."""
        return self.name.replace("-", "_")

    def handlers(self) -> tuple[Configure, Run]:
        """Import the module and return its ``configure_<attr>`` and ``run_<attr>``; LookupError if absent."""
        __import__(self.module)  # importlib.import_module's work without importing importlib (start-up cost)
        module = sys.modules[self.module]
        found: list[Any] = [getattr(module, f"{kind}_{self.attr}", None) for kind in ("configure", "run")]
        missing = [f"{kind}_{self.attr}" for kind, f in zip(("configure", "run"), found, strict=True)
                   if not callable(f)]
        if missing:
            raise LookupError(f"command {self.name!r}: {self.module} defines no {' or '.join(missing)}")
        return found[0], found[1]


COMMANDS: tuple[Command, ...] = (
    Command("init", "hivectl.cli.cmd_system", "prepare vm_dir and the host (run once per boot)", "host"),
    Command("get", "hivectl.cli.cmd_system", "show system settings", "host"),
    Command("set", "hivectl.cli.cmd_system", "change system settings", "host"),
    Command("datastore", "hivectl.cli.cmd_system", "list, add and remove datastores", "host"),
    Command("template", "hivectl.cli.cmd_system", "list and show guest templates", "host"),
    Command("version", "hivectl.cli.cmd_system", "print the version", "host"),
    Command("metrics", "hivectl.cli.cmd_metrics", "print the host's and guests' metrics (Prometheus text)", "host"),
    Command("events", "hivectl.cli.cmd_journal", "show the event log; --follow streams it", "host"),
    Command("audit", "hivectl.cli.cmd_journal", "show the audit log: who changed what, and the result", "host"),
    Command("passthru", "hivectl.cli.cmd_extra", "list PCI devices and which are ready for passthrough", "host"),
    Command("create", "hivectl.cli.cmd_guests", "create a guest from a template", "guests"),
    Command("list", "hivectl.cli.cmd_guests", "list guests and their state", "guests"),
    Command("info", "hivectl.cli.cmd_guests", "show everything about guests", "guests"),
    Command("configure", "hivectl.cli.cmd_guests", "edit a guest's configuration with $EDITOR", "guests"),
    Command("edit", "hivectl.cli.cmd_guests", "same as configure", "guests"),
    Command("rename", "hivectl.cli.cmd_guests", "rename a stopped guest", "guests"),
    Command("destroy", "hivectl.cli.cmd_guests", "remove a stopped guest and its disks", "guests"),
    Command("add", "hivectl.cli.cmd_guests", "add a disk or a network interface to a guest", "guests"),
    Command("import", "hivectl.cli.cmd_import", "make a guest from a bhyve command line or a script that runs one",
            "guests"),
    Command("migrate", "hivectl.cli.cmd_migrate", "move a guest to another host, cold or warm (--warm)", "guests"),
    Command("tags", "hivectl.cli.cmd_extra", "add, remove, list and find guest tags", "guests"),
    Command("disk", "hivectl.cli.cmd_storage", "list a guest's disks or grow one", "storage"),
    Command("snapshot", "hivectl.cli.cmd_storage", "take a ZFS snapshot of a guest", "storage"),
    Command("rollback", "hivectl.cli.cmd_storage", "roll a guest back to a ZFS snapshot", "storage"),
    Command("retention", "hivectl.cli.cmd_retention", "explain what a keep-daily/weekly/... policy keeps",
            "storage"),
    Command("clone", "hivectl.cli.cmd_storage", "make a new guest from a guest or a snapshot", "storage"),
    Command("iso", "hivectl.cli.cmd_storage", "list or download installer ISOs", "storage"),
    Command("img", "hivectl.cli.cmd_storage", "list or download cloud images", "storage"),
    Command("image", "hivectl.cli.cmd_storage", "create, list, provision and destroy guest images (ZFS)",
            "storage"),
    Command("backup", "hivectl.cli.cmd_storage", "write a guest to one compressed, checksummed file", "storage"),
    Command("replicate", "hivectl.cli.cmd_replicate", "keep a stopped copy of a guest on another host (ZFS)",
            "storage"),
    Command("promote", "hivectl.cli.cmd_replicate", "make a replica a normal guest and start it", "storage"),
    Command("restore", "hivectl.cli.cmd_storage", "recreate a guest from a backup", "storage"),
    Command("start", "hivectl.cli.cmd_lifecycle", "start guests (supervised; --dry-run shows the plan)", "run"),
    Command("install", "hivectl.cli.cmd_lifecycle", "start a guest with install media attached", "run"),
    Command("stop", "hivectl.cli.cmd_lifecycle", "ACPI shutdown with timeout, then force", "run"),
    Command("restart", "hivectl.cli.cmd_lifecycle", "shut a guest down and boot it again", "run"),
    Command("reset", "hivectl.cli.cmd_lifecycle", "reset a guest at once", "run"),
    Command("poweroff", "hivectl.cli.cmd_lifecycle", "power a guest off at once", "run"),
    Command("suspend", "hivectl.cli.cmd_suspend", "save running guests' state to disk and stop them", "run"),
    Command("resume", "hivectl.cli.cmd_suspend", "continue a suspended guest (or --discard its save)", "run"),
    Command("suspendall", "hivectl.cli.cmd_suspend", "suspend every running guest (stopall's order)", "run"),
    Command("resumeall", "hivectl.cli.cmd_suspend", "resume every suspended guest (vm_list first)", "run"),
    Command("console", "hivectl.cli.cmd_lifecycle", "attach to a guest's serial console", "run"),
    Command("startall", "hivectl.cli.cmd_lifecycle", "start the guests in vm_list, in order", "run"),
    Command("stopall", "hivectl.cli.cmd_lifecycle", "stop every running guest", "run"),
    Command("autostart", "hivectl.cli.cmd_extra", "choose the guests that start at boot, and their order", "run"),
    Command("switch", "hivectl.cli.cmd_switch", "virtual switches, NAT, DHCP and port forwards", "network"),
    Command("remote", "hivectl.cli.cmd_remote", "other hosts' hivectl over ssh: add, list, remove (-H NAME)",
            "host"),
    Command("token", "hivectl.cli.cmd_auth", "create, list and revoke bearer tokens for the daemon", "access"),
    Command("acl", "hivectl.cli.cmd_auth", "grant and revoke roles on guests, datastores and switches", "access"),
    Command("tenant", "hivectl.cli.cmd_auth", "tenants: a datastore, a VLAN, a memory limit and their users",
            "access"),
)
