"""The table of commands: name → module and one-line summary.

Commands are imported only when used, so ``hivectl list`` does not pay for ``hivectl backup``. Each module
defines ``configure_<name>(parser)`` and ``run_<name>(ctx, args) -> int`` (dashes become underscores).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str
    group: str


COMMANDS: tuple[Command, ...] = (
    Command("init", "hivectl.cli.cmd_system", "prepare vm_dir and the host (run once per boot)", "host"),
    Command("get", "hivectl.cli.cmd_system", "show system settings", "host"),
    Command("set", "hivectl.cli.cmd_system", "change system settings", "host"),
    Command("datastore", "hivectl.cli.cmd_system", "list, add and remove datastores", "host"),
    Command("template", "hivectl.cli.cmd_system", "list and show guest templates", "host"),
    Command("version", "hivectl.cli.cmd_system", "print the version", "host"),
    Command("create", "hivectl.cli.cmd_guests", "create a guest from a template", "guests"),
    Command("list", "hivectl.cli.cmd_guests", "list guests and their state", "guests"),
    Command("info", "hivectl.cli.cmd_guests", "show everything about guests", "guests"),
    Command("configure", "hivectl.cli.cmd_guests", "edit a guest's configuration with $EDITOR", "guests"),
    Command("edit", "hivectl.cli.cmd_guests", "same as configure", "guests"),
    Command("rename", "hivectl.cli.cmd_guests", "rename a stopped guest", "guests"),
    Command("destroy", "hivectl.cli.cmd_guests", "remove a stopped guest and its disks", "guests"),
    Command("add", "hivectl.cli.cmd_guests", "add a disk or a network interface to a guest", "guests"),
)
