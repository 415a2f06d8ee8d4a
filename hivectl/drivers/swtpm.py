"""``tpm="swtpm"``: the software TPM a guest's hypervisor talks to, started and stopped with the guest.

Both hypervisors want a TPM emulator listening on a UNIX socket before they start: bhyve(8) ``-l
tpm,swtpm,SOCKET`` (without it bhyve exits 4, "Failed to init TPM device") and QEMU's ``-tpmdev emulator``
with ``-chardev socket,path=SOCKET`` (docs/specs/tpm.rst in QEMU's tree). swtpm(8) provides it:
``swtpm socket --tpmstate dir=NAME/tpm --ctrl type=unixio,path=SOCKET --tpm2``, its state (the TPM's
seeds and NV memory) kept in the guest's directory, so a guest keeps its TPM across runs as it keeps its
disks.

One swtpm per run, made before each boot if it is not running (``StartSwtpm``, a prepare action of the
boot plan: a reboot finds it running and leaves it; a swtpm that died is started again), in its own
session so a terminal's Ctrl-C for a foreground guest does not reach it, and found again by its pid file
(``--pid file=NAME/swtpm.pid``) and its command line naming the guest's state directory, never by pid
alone. The driver's ``cleanup`` stops it (``StopSwtpm``), so every path that ends a run, a stale run of a
killed supervisor included (hivectl/runner/stale.py), ends its swtpm too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from pathlib import Path

from hivectl.errors import HivectlError
from hivectl.host import identity
from hivectl.host.base import Host
from hivectl.model.layout import GuestLayout
from hivectl.plan import Action
from hivectl.records import field, record

BINARY = "swtpm"
READY_TIMEOUT = 10.0  # seconds swtpm gets to listen on its socket
STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL
POLL = 0.05


def argv(layout: GuestLayout, socket: Path) -> list[str]:
    """swtpm(8)'s command line for one guest (TPM 2.0, control channel on ``socket``)."""
    for path in (layout.tpm_state, socket, layout.swtpm_pid):
        if "," in str(path):  # swtpm splits its option values at commas
            raise HivectlError(f"{path}: swtpm cannot take a path with a comma in it")
    return [BINARY, "socket", "--tpmstate", f"dir={layout.tpm_state}", "--ctrl", f"type=unixio,path={socket}",
            "--tpm2", "--pid", f"file={layout.swtpm_pid}"]


def running(layout: GuestLayout) -> int | None:
    """The pid of this guest's swtpm if it runs: the pid file's process, with the guest's state directory
    on its command line (a reused pid is some other program, never ours)."""
    try:
        text = layout.swtpm_pid.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    found = identity.identify(int(text))
    if found is None or f"dir={layout.tpm_state}" not in found.argv:
        return None
    return found.pid


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


@record
class StartSwtpm(Action):
    """Start the guest's swtpm unless it runs; return once it listens on ``socket``."""

    layout: GuestLayout
    socket: Path
    outcome: str = field(default="", compare=False)

    def argv(self) -> list[str]:
        return argv(self.layout, self.socket)

    def apply(self, host: Host) -> None:
        if running(self.layout) is not None and _is_socket(self.socket):
            self.outcome = "swtpm already running"
            return
        command = self.argv()
        try:
            self.layout.tpm_state.mkdir(mode=0o700, exist_ok=True)
            if _is_socket(self.socket):  # a dead swtpm's socket: nothing listens on it any more
                self.socket.unlink()
            self.layout.swtpm_pid.unlink(missing_ok=True)
            log = os.open(self.layout.swtpm_log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
        except OSError as error:
            raise HivectlError(f"cannot start swtpm: {error.filename}: {error.strerror}") from None
        try:
            proc = host.spawn(command, stderr=log, stdout=log, new_session=True)
        finally:
            os.close(log)
        deadline = time.monotonic() + READY_TIMEOUT
        while not (_is_socket(self.socket) and running(self.layout) == proc.pid):
            status = proc.poll()
            if status is not None:
                raise HivectlError(f"swtpm exited with status {status} while starting{self._said()}")
            if time.monotonic() > deadline:
                proc.kill()
                raise HivectlError(f"swtpm did not listen on {self.socket} within {READY_TIMEOUT:g} s{self._said()}")
            time.sleep(POLL)
        self.outcome = f"swtpm {proc.pid} listening on {self.socket}"

    def _said(self) -> str:
        try:
            lines = [line.strip() for line in self.layout.swtpm_log.read_text(errors="replace").splitlines()]
        except OSError:
            return ""
        lines = [line for line in lines if line]
        return f": {lines[-1]}" if lines else f"; see {self.layout.swtpm_log}"


@record
class StopSwtpm(Action):
    """Stop the guest's swtpm (SIGTERM, as swtpm(8) says, then SIGKILL) and remove its socket and pid file."""

    layout: GuestLayout
    socket: Path

    def argv(self) -> list[str]:
        return ["pkill", "-F", str(self.layout.swtpm_pid)]

    def apply(self, host: Host) -> None:
        pid = running(self.layout)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while running(self.layout) == pid and time.monotonic() < deadline:
                time.sleep(POLL)
            if running(self.layout) == pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.layout.swtpm_pid.unlink(missing_ok=True)
        if _is_socket(self.socket):
            self.socket.unlink()


def stop_action(layout: GuestLayout, socket: Path) -> list[Action]:
    """What ``cleanup`` adds: a stop, when a swtpm of this guest runs or left its files."""
    if running(layout) is None and not layout.swtpm_pid.exists() and not _is_socket(socket):
        return []
    return [StopSwtpm(layout, socket)]
