"""The interface between the supervisor and a hypervisor driver.

A driver turns a guest's config into concrete commands (pure planning, golden-testable) and knows how to
talk to its hypervisor while it runs. The supervisor (``hivectl/runner/supervisor.py``) owns the loop:
lock, ports, loader, hypervisor, exit-status policy, cleanup. Drivers never loop and never sleep.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path

from hivectl.host.base import Host
from hivectl.host.identity import ProcessIdentity
from hivectl.model.guest import GuestConfig
from hivectl.net.ports import Port
from hivectl.plan import Action
from hivectl.records import field, record
from hivectl.store import GuestRef, Store

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable


class Problem(str):
    """A preflight finding. ``level`` is ``error`` (cannot start) or ``warning`` (starts, but not as asked).

    It is a ``str`` so callers that only print problems keep working; callers that can go on despite
    warnings filter on ``fatal``.
    """

    level: str

    def __new__(cls, text: str, level: str = "error") -> Problem:
        obj = super().__new__(cls, text if level == "error" else f"warning: {text}")
        obj.level = level
        return obj

    @property
    def fatal(self) -> bool:
        return self.level == "error"


def is_fatal(problem: str) -> bool:
    """Plain strings from a driver are errors; ``Problem`` objects say for themselves."""
    return bool(getattr(problem, "fatal", True))


def unsupported_keys(config: GuestConfig) -> list[str]:
    """Warnings for vm-bhyve keys the config sets that hivectl does not act on (``prestart``, ``limit_*``...).

    The guest still starts, but without what vm-bhyve would have done for these keys; saying so at every
    start (in the log, and on ``start --dry-run``) beats a limit or hook that silently never applies.
    """
    from hivectl.model.keys import UNSUPPORTED

    return [Problem(f"{config.path}: {key}={config.values[key]!r} is not supported by hivectl and is ignored",
                    "warning") for key in UNSUPPORTED if config.values.get(key)]


class Outcome(Enum):
    """What a hypervisor exit means (bhyve(8): 0 reset, 1 poweroff, 2 halt, 3 triple fault, 4 error)."""

    REBOOT = "reboot"
    POWEROFF = "poweroff"
    HALT = "halt"
    FAULT = "fault"  # triple fault or a crash the guest caused
    ERROR = "error"  # the hypervisor itself failed (bad config, missing file, ...)
    KILLED = "killed"  # killed by a signal from outside


@record
class BootRequest:
    """What the supervisor asks the driver to plan for one boot."""

    ref: GuestRef
    config: GuestConfig
    ports: list[Port]
    install_media: Path | None = None  # ISO (or image) attached for an install boot
    first_boot: bool = True  # graphics_wait=auto waits only on the first boot of an install
    foreground: bool = False  # console on stdio instead of nmdm / a socket
    restore: Path | None = None  # resume from this save (NAME.save) instead of booting (first boot only)


@record
class BootPlan:
    """Everything needed to boot once.

    ``prepare`` runs before the loader on every boot (e.g. device.map, grub.cfg, UEFI vars copy, -k file);
    ``loader`` is run to completion first if set (bhyveload, grub-bhyve); ``hypervisor`` is exec'd and
    supervised; ``console`` lines go to NAME/console (``com1=/dev/nmdm-web.1B``, ``vnc=127.0.0.1:5900``);
    ``secrets`` are files holding secrets that must be removed after the run.
    """

    prepare: list[Action] = field(default_factory=list)
    loader: list[str] | None = None
    hypervisor: list[str] = field(default_factory=list)
    console: dict[str, str] = field(default_factory=dict)
    secrets: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    restore: Path | None = None  # the save this boot resumes from (``Driver.restore`` runs after the spawn)


class Driver(ABC):
    """One hypervisor."""

    name: str

    def __init__(self, host: Host, store: Store) -> None:
        self.host = host
        self.store = store

    @abstractmethod
    def preflight(self, ref: GuestRef, config: GuestConfig) -> list[str]:
        """Problems that prevent a start (missing firmware, module, binary); empty when ready."""

    @abstractmethod
    def plan_boot(self, request: BootRequest) -> BootPlan:
        """Pure planning of one boot: no side effects beyond read-only queries."""

    @abstractmethod
    def classify(self, status: int, ref: GuestRef) -> Outcome:
        """Map the hypervisor's exit status (negative: killed by that signal) to an outcome."""

    def wait_ready(self, ref: GuestRef, alive: Callable[[], bool], timeout: float) -> bool:
        """Wait, after the supervisor's one-second survival check, until the hypervisor has finished its own
        start-up checks; False if it exited first. bhyve makes its checks before that second is up, so
        the default waits for nothing; a driver whose hypervisor says when it is ready (QEMU's monitor)
        waits for that, so that a loaded host does not report a start that fails a moment later."""
        return alive()

    @abstractmethod
    def request_shutdown(self, ref: GuestRef, pid: int) -> None:
        """Ask the guest to power off (ACPI power button)."""

    @abstractmethod
    def force_poweroff(self, ref: GuestRef, pid: int | None) -> None:
        """Turn the guest off now (the supervisor then sees a POWEROFF exit)."""

    @abstractmethod
    def force_reset(self, ref: GuestRef, pid: int | None) -> None:
        """Reset the guest now (the supervisor then sees a REBOOT exit)."""

    @abstractmethod
    def cleanup(self, ref: GuestRef) -> list[Action]:
        """Actions run after the last boot on every exit path (e.g. ``bhyvectl --destroy``)."""

    @abstractmethod
    def control_argv(self, ref: GuestRef, request: str, pid: int | None) -> list[str]:
        """What ``request_shutdown`` (``request="shutdown"``), ``force_poweroff`` (``"poweroff"``) or
        ``force_reset`` (``"reset"``) does, as the command an administrator would type: the dry runs of
        ``stop``, ``restart``, ``reset`` and ``poweroff`` print it (docs/architecture.md)."""

    def reboots_in_place(self, config: GuestConfig) -> bool:
        """True when the hypervisor process survives a guest reboot (QEMU without -no-reboot)."""
        return False

    # -- suspend and resume (hivectl/drivers/checkpoint.py, hivectl/ops/suspend.py) -------------------------
    def checkpoint_problem(self) -> str | None:
        """Why this host cannot save and restore guests (one line naming what is missing), or None."""
        return f"the {self.name} driver cannot suspend guests"

    def suspend_argv(self, ref: GuestRef, pid: int | None) -> list[list[str]]:
        """What :meth:`suspend` does, as commands (``suspend --dry-run`` prints them)."""
        return []

    def suspend(self, ref: GuestRef, pid: int, timeout: float) -> None:
        """Save the running guest into ``NAME.save`` and end its hypervisor; raises when the save failed
        (the guest then keeps running)."""
        raise NotImplementedError(self.checkpoint_problem())

    def restore(self, ref: GuestRef, save: Path, pid: int, timeout: float) -> None:
        """After the spawn of a boot planned with ``restore``: load the save into the hypervisor, when the
        hypervisor does not do that by itself from its command line (bhyve ``-r`` does)."""
        return None

    # -- lifecycle probes: telling our VMs from others (hivectl/runner/stale.py) ---------------------------
    def leftover_vm(self, ref: GuestRef) -> str | None:
        """The kernel object of a VM of this name that exists now (bhyve: ``/dev/vmm/NAME``), or None.

        Asked once any stale run of ours was cleared: what remains was not made by hivectl.
        """
        return None

    def foreign_processes(self, ref: GuestRef) -> list[ProcessIdentity]:
        """Live hypervisor processes naming this guest, ours or not (the caller removes the one we recorded).

        Empty where the kernel object is the whole truth (bhyve: :meth:`leftover_vm`'s ``/dev/vmm/NAME``).
        """
        return []

    def clear_hint(self, ref: GuestRef) -> str:
        """The command an administrator runs to clear what :meth:`leftover_vm` found."""
        return "the hypervisor's own tools"
