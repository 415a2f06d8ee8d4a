"""``QemuDriver``: the ``Driver`` interface for ``qemu-system-x86_64``.

How the supervisor uses it, beyond the base interface (one addition, ``watch``):

    plan = driver.plan_boot(request)          # pure; prepare actions make NAME/uefi-vars.fd once
    proc = spawn(plan.hypervisor)
    driver.watch(ref, proc)                   # returns at once; holds NAME/qmp.sock in a thread
    status = proc.wait()
    outcome = driver.classify(status, ref)    # REBOOT / POWEROFF / KILLED / ERROR / FAULT

``watch`` is what makes ``classify`` exact: QEMU exits 0 on both reboot and power-off, and only the QMP
SHUTDOWN event says which (see ``events``). Without a watch, status 0 is classified POWEROFF. Control
(``request_shutdown``, ``force_poweroff``, ``force_reset``, ``status``) goes through the second monitor
socket ``NAME/qmp-ctl.sock``, so it works from any process while the supervisor holds the first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from hivectl.drivers import hostchecks, swtpm
from hivectl.drivers.base import BootPlan, BootRequest, Driver, Outcome, unsupported_keys
from hivectl.drivers.qemu import accel as accel_mod
from hivectl.drivers.qemu import argv as argv_mod
from hivectl.drivers.qemu import consoles
from hivectl.drivers.qemu import tpm as tpm_mod
from hivectl.drivers.qemu.devices import disk as disks
from hivectl.drivers.qemu.events import EventWatch, outcome_for
from hivectl.drivers.qemu.firmware import OVMF_CODE, OVMF_VARS, firmware_for
from hivectl.errors import ConfigError
from hivectl.host import identity
from hivectl.host.base import Host
from hivectl.host.identity import ProcessIdentity
from hivectl.host.process import Process
from hivectl.model.guest import GuestConfig
from hivectl.model.layout import VIRT_CONSOLE_PREFIX
from hivectl.net.ports import Port
from hivectl.plan import Action, Call
from hivectl.store import GuestRef, Store

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable

WATCH_DRAIN_TIMEOUT = 3.0  # how long classify waits for the watcher to read QEMU's last events


class QemuDriver(Driver):
    """QEMU on Linux (q35; KVM where it is real, else TCG)."""

    name = "qemu"
    binary = argv_mod.QEMU_BINARY
    ovmf_code: Path = OVMF_CODE
    ovmf_vars: Path = OVMF_VARS

    def __init__(self, host: Host, store: Store) -> None:
        super().__init__(host, store)
        self._watches: dict[Path, EventWatch] = {}

    # -- facts -----------------------------------------------------------------------------------------
    def accelerator(self) -> str:
        """``kvm`` or ``tcg``: what guests started now will run on (for ``info``)."""
        return accel_mod.accelerator(self.host.root)

    def sockets(self, ref: GuestRef) -> consoles.Sockets:
        return consoles.Sockets(ref.layout)

    # -- before a start --------------------------------------------------------------------------------
    def preflight(self, ref: GuestRef, config: GuestConfig) -> list[str]:
        problems: list[str] = []
        if self.host.which(self.binary) is None:
            problems.append(f"{self.binary} is not installed (Debian: apt-get install qemu-system-x86)")
        try:
            accel = self.accelerator()
        except ConfigError as error:
            problems.append(str(error))
        else:
            if not self.store.settings.disable_host_checks:  # vm-bhyve's vm_disable_host_checks
                problems += hostchecks.qemu(self.host, config, accel)
        firmware = firmware_for(ref, config, self.ovmf_code, self.ovmf_vars)
        if firmware.code is not None and not firmware.code.is_file():
            problems.append(f"UEFI firmware {firmware.code} is missing (Debian: apt-get install ovmf)")
        if firmware.vars is not None and not firmware.vars.exists() and firmware.vars_template is not None \
                and not firmware.vars_template.is_file():
            problems.append(f"UEFI variable store template {firmware.vars_template} is missing "
                            "(Debian: apt-get install ovmf)")
        problems += self._missing_files(ref, config)
        tpm = tpm_mod.of(config, ref)
        if tpm is not None and tpm[0] == "passthru" and not self.host.devpath(str(tpm[1])).exists():
            problems.append(f"tpm=passthru but {tpm[1]} does not exist on this host")
        if tpm is not None and tpm[0] == "swtpm" and self.host.which(swtpm.BINARY) is None:
            problems.append("tpm=swtpm but swtpm is not installed (Debian: apt-get install swtpm swtpm-tools)")
        for nic in config.nics:
            if nic.device and not self._interface_exists(nic.device):
                problems.append(f"{config.path}: {nic.key}_device={nic.device}: no such network interface")
        for path in self.sockets(ref).all(config):
            if len(str(path).encode()) > consoles.SOCKET_PATH_MAX:
                problems.append(f"socket path {path} is longer than {consoles.SOCKET_PATH_MAX} bytes; move the "
                                "guest to a datastore with a shorter path")
                break
        return problems + unsupported_keys(config)

    def _missing_files(self, ref: GuestRef, config: GuestConfig) -> list[str]:
        problems: list[str] = []
        for disk in config.disks:
            try:
                if disks.is_share(disk):
                    _, directory = disks.share_of(disk, config.path)
                    if not directory.is_dir():
                        problems.append(f"{config.path}: {disk.key}_name={disk.name}: {directory} is not a directory")
                    continue
                path = disks.disk_path(ref, disk, config.path)
            except ConfigError as error:
                problems.append(str(error))
                continue
            if not self.host.devpath(str(path)).exists():
                problems.append(f"{config.path}: {disk.key}_name={disk.name}: {path} does not exist")
        for key in ("qemu_kernel", "qemu_initrd"):
            value = config.get(key)
            if value and not argv_mod.guest_path(ref, value).is_file():
                problems.append(f"{config.path}: {key}={value}: {argv_mod.guest_path(ref, value)} does not exist")
        return problems

    def _interface_exists(self, name: str) -> bool:
        """Asked of the kernel for this process's network namespace (sysfs may show another one)."""
        import socket

        try:
            socket.if_nametoindex(name)
        except OSError:
            return False
        return True

    def missing_ports(self, ports: list[Port]) -> list[str]:
        """Interfaces among ``ports`` that do not exist (for a check after port setup)."""
        return [port.ifname for port in ports if port.ifname and not self._interface_exists(port.ifname)]

    # -- one boot --------------------------------------------------------------------------------------
    def plan_boot(self, request: BootRequest) -> BootPlan:
        boot = argv_mod.plan_boot(request, self.accelerator(), self.ovmf_code, self.ovmf_vars, self.binary)
        if request.restore is not None:
            boot.hypervisor += ["-incoming", "defer"]  # wait for migrate-incoming (checkpoint.restore)
            boot.restore = request.restore
        return boot

    # -- suspend and resume (hivectl/drivers/qemu/checkpoint.py) -----------------------------------------
    def checkpoint_problem(self) -> str | None:
        return None  # every QEMU can migrate into a descriptor

    # checkpoint and qmp (with socket) are imported where used: a start does not talk to QMP before QEMU's
    # exec, which is the part of a start benchmarks/bench_start.py times.
    def suspend_argv(self, ref: GuestRef, pid: int | None) -> list[list[str]]:
        from hivectl.drivers.qemu import checkpoint

        return checkpoint.suspend_argvs(self.sockets(ref).control, ref.layout.suspend)

    def suspend(self, ref: GuestRef, pid: int, timeout: float) -> None:
        from hivectl.drivers.qemu import checkpoint

        checkpoint.suspend(ref.directory, self.sockets(ref).control, ref.layout.suspend, timeout)

    def restore(self, ref: GuestRef, save: Path, pid: int, timeout: float) -> None:
        from hivectl.drivers.qemu import checkpoint

        checkpoint.restore(ref.directory, self.sockets(ref).control, save, pid, timeout)

    def watch(self, ref: GuestRef, proc: Process | int | None = None) -> EventWatch:
        """Start holding ``NAME/qmp.sock`` for this run (call right after spawning QEMU; returns at once)."""
        pid = proc if isinstance(proc, int) else (proc.pid if proc is not None else None)
        old = self._watches.pop(ref.directory, None)
        if old is not None:
            old.stop()
        paused = "-S" in _argv_of(proc)
        watch = EventWatch(self.sockets(ref).qmp, pid, resume_on_vnc=paused).start()
        self._watches[ref.directory] = watch
        return watch

    watch_events = watch  # the name used in the design notes

    def classify(self, status: int, ref: GuestRef) -> Outcome:
        watch = self._watches.pop(ref.directory, None)
        if watch is None:
            return outcome_for(status, None)
        if not watch.wait(WATCH_DRAIN_TIMEOUT):
            watch.stop()
        return watch.outcome(status)

    def adopted_outcome(self, ref: GuestRef) -> Outcome | None:
        """How an adopted QEMU ended, from the events its adopter's ``watch`` saw (a SHUTDOWN reason or a
        panic), or None when none arrived: its exit status is not the adopter's to read (wait(2)), so
        the reason is all there is, and without one the outcome stays unknown rather than guessed."""
        watch = self._watches.pop(ref.directory, None)
        if watch is None:
            return None
        if not watch.wait(WATCH_DRAIN_TIMEOUT):
            watch.stop()
        if watch.shutdown_reason is None and not watch.panicked:
            return None
        return watch.outcome(0)

    def wait_ready(self, ref: GuestRef, alive: Callable[[], bool], timeout: float) -> bool:
        """Wait until QEMU's control monitor answers ``query-status``: QEMU answers only from its main
        loop, after every device, chardev and display is set up, so a start that fails there (a VNC port
        taken, a tap busy) fails before ``start`` reports success, however slow the host. On a loaded
        host QEMU can take longer than the supervisor's one-second survival check to get there (CI saw
        ``start`` succeed and QEMU exit on the taken VNC port a moment later).

        A process that has not even made its monitor socket by then is not a QEMU being slow in its
        set-up (QEMU makes its chardevs first), so it is taken as started, as before; one whose monitor
        never answers within ``timeout`` is taken as started too: it is alive, and stop still reaches it
        by signal. False when QEMU exits while this waits: the caller reports that exit."""
        from hivectl.drivers.qemu import qmp

        control = self.sockets(ref).control
        deadline = time.monotonic() + timeout
        while alive():
            if not control.exists():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            try:
                qmp.command(control, "query-status", timeout=min(5.0, remaining))
                return True
            except qmp.QmpError:
                time.sleep(0.1)
        return False

    # -- control ---------------------------------------------------------------------------------------
    def _control(self, ref: GuestRef, command: str) -> object:
        from hivectl.drivers.qemu import qmp

        return qmp.command(self.sockets(ref).control, command)

    def request_shutdown(self, ref: GuestRef, pid: int) -> None:
        """ACPI power button (QMP ``system_powerdown``); the guest decides whether to turn off."""
        self._control(ref, "system_powerdown")

    def force_poweroff(self, ref: GuestRef, pid: int | None) -> None:
        """QMP ``quit`` (seen as POWEROFF); if QEMU does not answer, SIGKILL the pid (seen as KILLED)."""
        from hivectl.drivers.qemu import qmp

        try:
            self._control(ref, "quit")
        except qmp.QmpError:
            if pid is None:
                raise
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def force_reset(self, ref: GuestRef, pid: int | None) -> None:
        """QMP ``system_reset``: with ``-action reboot=shutdown`` QEMU exits and classify says REBOOT."""
        self._control(ref, "system_reset")

    def control_argv(self, ref: GuestRef, request: str, pid: int | None) -> list[str]:
        """The QMP command sent on the guest's control socket (shown as ``qmp SOCKET COMMAND``)."""
        command = {"shutdown": "system_powerdown", "poweroff": "quit", "reset": "system_reset"}[request]
        return ["qmp", str(self.sockets(ref).control), command]

    def status(self, ref: GuestRef) -> str:
        """QEMU's run state (``running``, ``paused``, ``prelaunch``, ``shutdown``, ...)."""
        reply = self._control(ref, "query-status")
        return str(reply.get("status", "")) if isinstance(reply, dict) else ""

    def foreign_processes(self, ref: GuestRef) -> list[ProcessIdentity]:
        """QEMU processes started with ``-name NAME`` (or ``guest=NAME``): Linux has no /dev/vmm, so a
        QEMU of this name that hivectl did not record is what a foreign VM is (qemu(1) ``-name``)."""
        return identity.find(ref.name, "qemu")

    def clear_hint(self, ref: GuestRef) -> str:
        return "its QEMU monitor (quit), or kill its process"

    # -- after the last boot ---------------------------------------------------------------------------
    def cleanup(self, ref: GuestRef) -> list[Action]:
        """Remove the run's sockets and a left-over VNC secret; never the vars store or anything else."""
        sockets = self.sockets(ref)
        try:
            config = ref.config()
            paths = sockets.all(config)
        except (OSError, ConfigError):
            paths = [sockets.qmp, sockets.control, sockets.vnc, sockets.serial("com1", True)]
        paths += sorted(ref.directory.glob(f"{VIRT_CONSOLE_PREFIX}*")) + sorted(ref.directory.glob("com[1-4].sock"))
        unique = sorted(set(paths))
        secret = sockets.vnc_secret
        tpm = None
        with contextlib.suppress(OSError, ConfigError):
            tpm = tpm_mod.of(ref.config(), ref)
        socket = tpm[1] if tpm is not None and tpm[0] == "swtpm" else ref.layout.swtpm_socket
        return [Call(["rm", "-f", *map(str, [*unique, secret])], lambda: _remove(unique, secret)),
                *swtpm.stop_action(ref.layout, socket)]


def _argv_of(proc: Process | int | None) -> list[str]:
    """The command line QEMU was started with (to see whether it waits paused for a VNC client)."""
    if proc is None:
        return []
    if isinstance(proc, int):
        try:
            return Path(f"/proc/{proc}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return []
    return [str(arg) for arg in proc.args] if isinstance(proc.args, list | tuple) else []


def _remove(sockets: list[Path], secret: Path) -> None:
    """Only sockets are removed from the socket list: a regular file of the same name is not ours."""
    for path in sockets:
        try:
            if path.is_socket():
                path.unlink()
        except FileNotFoundError:
            continue
    secret.unlink(missing_ok=True)
