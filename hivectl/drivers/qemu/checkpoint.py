"""QEMU's save and restore: a migration into a file, and an incoming migration from it (qemu(1), QMP).

Suspend, on the guest's control monitor: ``stop`` (the vCPUs pause, so the stream is one pass and the
memory in it is the memory at that instant), a descriptor of ``NAME.save.partial`` handed over with
``getfd`` (SCM_RIGHTS) and ``migrate`` to ``fd:NAME``, ``query-migrate`` until ``completed``, then the file
is flushed and renamed to ``NAME.save`` and QEMU is told to ``quit``. A descriptor rather than a path
because QEMU 7.2 (Debian 12) has no ``file:`` migration URI and ``exec:`` would run a shell. A failed or
timed-out migration is cancelled, the partial file removed and the guest continued (``cont``): it keeps
running and nothing is lost.

Resume: QEMU is started as for a boot, plus ``-incoming defer``, which makes it wait with the machine
built and the vCPUs not started; the supervisor then hands over a descriptor of ``NAME.save`` and sends
``migrate-incoming``. The guest was paused when it was saved, so QEMU stays paused after loading it
(QEMU's global-state section carries the run state) and ``cont`` continues it where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from hivectl.drivers.qemu import qmp
from hivectl.errors import HivectlError
from hivectl.host import identity
from hivectl.safety import paths

SAVE_FD = "hivectl-save"
RESTORE_FD = "hivectl-restore"
POLL = 0.1


def suspend_argvs(control: Path, save: Path) -> list[list[str]]:
    """The QMP commands of a suspend, shown as ``qmp SOCKET COMMAND [ARGUMENT]`` (as ``stop --dry-run``)."""
    partial = f"{save}.partial"
    return [["qmp", str(control), "stop"], ["qmp", str(control), "getfd", f"fdname={SAVE_FD}", f"fd<{partial}"],
            ["qmp", str(control), "migrate", f"uri=fd:{SAVE_FD}"], ["qmp", str(control), "query-migrate"],
            ["mv", partial, str(save)], ["qmp", str(control), "quit"]]


def _wait_migrated(client: qmp.QmpClient, deadline: float) -> None:
    while True:
        info = client.execute("query-migrate")
        status = str(info.get("status", "")) if isinstance(info, dict) else ""
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            why = info.get("error-desc", status) if isinstance(info, dict) else status
            raise HivectlError(f"QEMU's migration into the save failed: {why}")
        if time.monotonic() > deadline:
            with contextlib.suppress(qmp.QmpError):
                client.execute("migrate_cancel")
            raise HivectlError(f"QEMU's migration into the save did not complete in time (status {status!r})")
        time.sleep(POLL)


def suspend(directory: Path, control: Path, save: Path, timeout: float) -> None:
    """Save the guest into ``save`` and end QEMU; on failure the guest runs on and no partial file is left."""
    partial = save.with_name(save.name + ".partial")
    deadline = time.monotonic() + timeout
    with qmp.QmpClient(control, timeout=10.0) as client:
        client.execute("stop")
        fd = paths.open_file(directory, partial, write=True, truncate=True, create=True, mode=0o600)
        try:
            try:
                client.execute("getfd", {"fdname": SAVE_FD}, fd)
                client.execute("migrate", {"uri": f"fd:{SAVE_FD}"})
                _wait_migrated(client, deadline)
                os.fsync(fd)
            except BaseException:
                partial.unlink(missing_ok=True)
                with contextlib.suppress(qmp.QmpError, OSError):
                    client.execute("cont")
                raise
        finally:
            os.close(fd)
        os.replace(partial, save)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with contextlib.suppress(qmp.QmpError, OSError):
            client.execute("quit")  # QEMU may close the connection before it answers


def _connect(control: Path, pid: int, deadline: float) -> qmp.QmpClient:
    """The control monitor of a QEMU that is still starting (it creates its sockets early, but not at once)."""
    while True:
        client = qmp.QmpClient(control, timeout=10.0)
        try:
            return client.connect()
        except OSError:
            if not identity.pid_alive(pid):  # a zombie QEMU (our child, not yet reaped) is dead too
                raise HivectlError(f"QEMU (pid {pid}) exited before it took the save") from None
            if time.monotonic() > deadline:
                raise HivectlError(f"QEMU's monitor {control} did not come up to take the save") from None
            time.sleep(POLL)


def restore(directory: Path, control: Path, save: Path, pid: int, timeout: float) -> None:
    """Load ``save`` into a QEMU started with ``-incoming defer`` and continue the guest."""
    deadline = time.monotonic() + timeout
    client = _connect(control, pid, deadline)
    with client:
        fd = paths.open_file(directory, save)
        try:
            client.execute("getfd", {"fdname": RESTORE_FD}, fd)
        finally:
            os.close(fd)
        client.execute("migrate-incoming", {"uri": f"fd:{RESTORE_FD}"})
        while True:
            reply = client.execute("query-status")
            status = str(reply.get("status", "")) if isinstance(reply, dict) else ""
            if status == "running":
                return
            if status in ("paused", "postmigrate", "prelaunch"):
                client.execute("cont")
                return
            if status not in ("inmigrate", "restore-vm"):
                raise HivectlError(f"QEMU did not resume the save: its state is {status!r}")
            if time.monotonic() > deadline:
                raise HivectlError(f"QEMU did not finish loading the save {save} within {timeout:g} s")
            time.sleep(POLL)
