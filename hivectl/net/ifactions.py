"""Plan actions for ``ifconfig`` on interfaces whose kernel name is only known once the plan runs.

FreeBSD names a new bridge itself (``bridgeN``) unless it is renamed, and a renamed bridge keeps its unit,
so the next name cannot be predicted. ``CreateBridge`` learns the name from ``ifconfig``'s output and
stores it in an ``IfName`` that later ``OnIf`` actions of the same plan read; a dry run shows them on
``<bridge of NAME>``. When the name is known at planning time, ``on`` returns a plain ``Run``.
"""

from __future__ import annotations

from hivectl.errors import HivectlError
from hivectl.host.base import CommandFailed, Host
from hivectl.plan import Action, Run
from hivectl.records import record


def ifconfig(*args: str, undo: list[str] | None = None) -> Run:
    return Run(["ifconfig", *args], undo_argv=undo)


class IfName:
    """An interface name, or the name the kernel will print when a planned ``create`` runs.

    ``shown`` is what a dry run prints while the name is unknown (``<bridge of NAME>``).
    """

    def __init__(self, shown: str, value: str = "") -> None:
        self.shown = shown
        self.value = value

    def text(self) -> str:
        return self.value or self.shown

    def require(self) -> str:
        if not self.value:
            raise HivectlError(f"{self.shown} was not created")
        return self.value


@record
class OnIf(Action):
    """``ifconfig <name> ARGS`` on an interface whose name becomes known while the plan runs."""

    target: IfName
    args: list[str]
    undo_args: list[str] | None = None

    def argv(self) -> list[str]:
        return ["ifconfig", self.target.text(), *self.args]

    def apply(self, host: Host) -> None:
        host.run(["ifconfig", self.target.require(), *self.args])

    def undo(self, host: Host) -> None:
        if self.undo_args and self.target.value:
            host.run(["ifconfig", self.target.value, *self.undo_args], check=False)


def on(target: IfName, *args: str, undo: list[str] | None = None) -> Action:
    """``ifconfig`` on ``target``: a plain ``Run`` when the name is known at planning time."""
    if target.value:
        return Run(["ifconfig", target.value, *args],
                   undo_argv=["ifconfig", target.value, *undo] if undo else None)
    return OnIf(target, list(args), undo)


@record
class CreateBridge(Action):
    """``ifconfig bridge create ...``: learns the kernel's name from its output, and never leaks a bridge.

    ``ifconfig`` applies its parameters one by one and keeps what it did when a later one fails, so a
    failure part-way would leave a bridge behind; it is found again through its lookup group (the first
    parameter) and destroyed before the error is passed on.
    """

    command: list[str]
    target: IfName
    lookup: str

    def argv(self) -> list[str]:
        return list(self.command)

    def apply(self, host: Host) -> None:
        try:
            out = host.run(self.command).stdout.split()
        except CommandFailed:
            for name in host.run(["ifconfig", "-g", self.lookup], check=False).stdout.split():
                host.run(["ifconfig", name, "destroy"], check=False)
            raise
        if out:
            self.target.value = out[-1]
        elif not self.target.value:
            raise HivectlError(f"{' '.join(self.command)}: printed no interface name")

    def undo(self, host: Host) -> None:
        if self.target.value:
            host.run(["ifconfig", self.target.value, "destroy"], check=False)
