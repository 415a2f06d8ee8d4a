"""Telling a reboot from a power-off: the supervisor's QMP watcher and the exit classification.

bhyve says why it exited through its exit status (0 reset, 1 power-off, ...). QEMU, run with
``-action reboot=shutdown`` so that a guest reboot ends the process like bhyve's does, exits with status
0 for both a reboot and a power-off. The reason is only in the ``SHUTDOWN`` event QEMU sends on QMP just
before it exits (``{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}``). Events
go only to a client connected at that moment, so the supervisor keeps one connection open for the whole
run: ``EventWatch`` connects to ``NAME/qmp.sock`` in a background thread once QEMU is up, records every
event, and ends when QEMU closes the socket. ``classify`` then reads the last SHUTDOWN reason:

| reason | outcome |
|---|---|
| guest-reset, host-qmp-system-reset (``hivectl reset``) | REBOOT |
| guest-shutdown (ACPI power-off), host-qmp-quit (``hivectl poweroff``), host-ui | POWEROFF |
| guest-panic (or a GUEST_PANICKED event) | FAULT |
| host-signal (SIGTERM/SIGINT/SIGHUP to QEMU) | KILLED |

A status below zero (QEMU killed by a signal) is KILLED and a positive one ERROR (QEMU itself failed),
whatever the events said. Status 0 with no SHUTDOWN seen (no watcher, or it never got in) is POWEROFF:
when in doubt, the guest stays off rather than being restarted against the administrator's wish.

The watcher only listens, except for one job: ``graphics_wait`` for QEMU. When QEMU was started paused
(``-S``, which the driver adds only for that), it sends ``cont`` as soon as a VNC client has finished
connecting (``VNC_INITIALIZED``), or at once if one already had. Otherwise it never sends a command:
QEMU 7.2 can hang for good in its exit path when a QMP command arrives while it is shutting down (seen
with a SIGTERM racing a ``query-status``), and a supervisor must not create that race on every run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from hivectl.drivers.base import Outcome
from hivectl.host.identity import pid_alive

# The QMP client (and ``socket``) is imported by the watcher's thread, which starts after QEMU's exec: the
# supervisor's part of a start before that exec is what benchmarks/bench_start.py times.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

    from hivectl.drivers.qemu.qmp import Message, QmpClient

REASONS: dict[str, Outcome] = {
    "guest-reset": Outcome.REBOOT,
    "host-qmp-system-reset": Outcome.REBOOT,
    "guest-shutdown": Outcome.POWEROFF,
    "host-qmp-quit": Outcome.POWEROFF,
    "host-ui": Outcome.POWEROFF,
    "guest-panic": Outcome.FAULT,
    "host-signal": Outcome.KILLED,
    "host-error": Outcome.ERROR,
}
CONNECT_POLL = 0.02


def outcome_for(status: int, reason: str | None, panicked: bool = False) -> Outcome:
    """Map QEMU's exit status and the last SHUTDOWN reason to an outcome (see the module docstring)."""
    if status < 0:
        return Outcome.KILLED
    if status > 0:
        return Outcome.FAULT if panicked else Outcome.ERROR
    if panicked:
        return Outcome.FAULT
    return REASONS.get(reason or "", Outcome.POWEROFF)


class EventWatch:
    """Holds ``qmp.sock`` for one QEMU run and remembers what it said.

    ``pid`` (QEMU's) lets the connect loop give up at once when QEMU has already exited; ``connect_timeout``
    bounds how long it waits for the socket to appear; ``resume_on_vnc`` is set when QEMU was started
    with ``-S`` for ``graphics_wait``.
    """

    def __init__(self, path: Path, pid: int | None = None, connect_timeout: float = 30.0,
                 resume_on_vnc: bool = False) -> None:
        self.path = path
        self.pid = pid
        self.connect_timeout = connect_timeout
        self.events: list[Message] = []
        self.connected = threading.Event()
        self.error: str = ""
        self._client: QmpClient | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resume_on_vnc = resume_on_vnc
        self._thread = threading.Thread(target=self._run, name=f"qmp-watch:{path}", daemon=True)

    def start(self) -> EventWatch:
        self._thread.start()
        return self

    # -- what was seen ---------------------------------------------------------------------------------
    @property
    def shutdown_reason(self) -> str | None:
        """``reason`` of the last SHUTDOWN event, or None if none arrived."""
        with self._lock:
            for event in reversed(self.events):
                if event.get("event") == "SHUTDOWN":
                    data = event.get("data") or {}
                    reason = data.get("reason") if isinstance(data, dict) else None
                    return str(reason) if reason is not None else None
        return None

    @property
    def panicked(self) -> bool:
        with self._lock:
            return any(e.get("event") == "GUEST_PANICKED" for e in self.events)

    def outcome(self, status: int) -> Outcome:
        return outcome_for(status, self.shutdown_reason, self.panicked)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the watcher to finish (QEMU closed QMP); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop watching (the connection is closed; QEMU keeps running)."""
        self._stop.set()
        client = self._client
        if client is not None:
            client.shutdown()
        self._thread.join(5)

    # -- the thread ------------------------------------------------------------------------------------
    def _connect(self) -> QmpClient | None:
        from hivectl.drivers.qemu.qmp import QmpClient, QmpError

        deadline = time.monotonic() + self.connect_timeout
        while not self._stop.is_set():
            client = QmpClient(self.path, timeout=5.0)
            try:
                return client.connect()
            except (OSError, QmpError, TimeoutError) as error:
                self.error = str(error)
            if (self.pid is not None and not pid_alive(self.pid)) or time.monotonic() >= deadline:
                return None
            self._stop.wait(CONNECT_POLL)
        return None

    def _run(self) -> None:
        from hivectl.drivers.qemu.qmp import QmpError

        client = self._connect()
        if client is None:
            return
        self._client = client
        self.error = ""
        self.connected.set()
        try:
            if self._resume_on_vnc:
                self._resume_if_client(client)
            while not self._stop.is_set():
                event = client.next_event(None)  # events queued while a command ran come first
                if event is None:
                    break
                self._record([event])
                if self._resume_on_vnc and event.get("event") == "VNC_INITIALIZED":
                    self._resume(client)
        except (OSError, QmpError, TimeoutError) as error:
            self.error = str(error)  # e.g. QEMU exited in the middle of a command
        finally:
            self._record(list(client.events))  # what arrived before a failed command must count too
            client.events.clear()
            client.close()
            self._client = None

    def _record(self, events: list[Message]) -> None:
        with self._lock:
            self.events.extend(events)

    def _resume_if_client(self, client: QmpClient) -> None:
        """A VNC client may have connected before the watcher did: then its event is gone, resume now."""
        from hivectl.drivers.qemu.qmp import QmpError

        vnc: Any = None
        with contextlib.suppress(QmpError):
            vnc = client.execute("query-vnc")
        if isinstance(vnc, dict) and vnc.get("clients"):
            self._resume(client)

    def _resume(self, client: QmpClient) -> None:
        self._resume_on_vnc = False
        client.send("cont")  # the reply is skipped by next_event
