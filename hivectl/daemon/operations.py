"""Background operations: what ``202 Accepted`` points at (Incus's ``/1.0/operations``).

An operation that can take over a second (``catalog.ASYNC``) runs in a worker thread of this process; the
request that started it is answered at once with the operation's location, and the client polls
(``GET /1.0/operations/ID``), waits (``/wait?timeout=``) or cancels (``DELETE``). Threads rather than
processes: the work is the same blocking ``Hivectl`` call the CLI makes (the guest's own supervisor is
already a separate process, docs/architecture.md), and a thread shares this daemon's view of operations.

Cancellation is cooperative, between host commands (``steps.SteppedHost``): a pending operation is
cancelled at once, a running one at its next step, after which its plan rolls back. An operation that
has already spawned a guest's supervisor finishes its wait.

Finished operations are kept (the newest ``keep``) so that a client that polls late still sees the
outcome. Listeners (the events stream of issue 11.3) are called on every change of an operation.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hivectl.daemon import envelope
from hivectl.daemon.steps import CancelToken
from hivectl.errors import NotFound

log = logging.getLogger("hivectld.operations")

DONE = ("Success", "Failure", "Cancelled")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Record:
    """One operation's state; changed only under the manager's lock."""

    id: str
    name: str
    resources: dict[str, list[str]]
    token: CancelToken
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    status: str = "Pending"
    result: Any = None
    err: str = ""
    code: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    serial: int = 0  # order of creation

    def info(self) -> envelope.OperationInfo:
        metadata: dict[str, Any] = {"progress": {"steps": self.token.steps, "command": self.token.last}}
        if self.status == "Success":
            metadata["result"] = self.result
        return envelope.OperationInfo.model_validate({
            "id": self.id, "class": "task", "description": self.name, "created_at": self.created_at,
            "updated_at": self.updated_at, "status": self.status, "status_code": envelope.STATUS[self.status],
            "resources": self.resources, "metadata": metadata, "may_cancel": self.status in ("Pending", "Running"),
            "err": self.err, "code": self.code, "location": f"/1.0/operations/{self.id}"})


Listener = Callable[[envelope.OperationInfo], None]


class OperationManager:
    """Runs background operations on a few worker threads and keeps their records."""

    def __init__(self, workers: int = 4, keep: int = 1000) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hivectld-op")
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep
        self._serial = itertools.count()
        self.listeners: list[Listener] = []

    def _changed(self, record: Record) -> None:
        info = record.info()
        for listener in list(self.listeners):
            try:
                listener(info)
            except Exception:  # a broken listener must not break the operation
                log.exception("operation listener failed")

    def _set(self, record: Record, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(record, key, value)
            record.updated_at = _now()
        # Listeners first (the events stream writes the operation's event), then the waiters are woken: a
        # caller of ``/wait`` that reads the event log at once finds the final event in it (it used not to,
        # now and then: tests/journal/test_daemon_events.py, test_background_operations_are_events).
        self._changed(record)
        if record.status in DONE:
            record.done.set()

    def submit(self, name: str, resources: dict[str, list[str]], work: Callable[[CancelToken], Any]) -> Record:
        """Queue ``work(token)``; returns the operation's record at once."""
        record_ref: list[Record] = []

        def step(_steps: int, _last: str) -> None:
            if record_ref:
                self._changed(record_ref[0])

        token = CancelToken(on_step=step)
        record = Record(str(uuid.uuid4()), name, resources, token, serial=next(self._serial))
        record_ref.append(record)
        with self._lock:
            self._records[record.id] = record
            self._trim()
        self._changed(record)
        self._pool.submit(self._run, record, work)
        return record

    def _run(self, record: Record, work: Callable[[CancelToken], Any]) -> None:
        if record.token.requested:
            self._set(record, status="Cancelled", err="cancelled before it started", code="cancelled")
            return
        self._set(record, status="Running")
        try:
            result = work(record.token)
        except BaseException as error:  # every outcome becomes the operation's status
            status, code = envelope.classify(error)
            if status >= 500:
                log.error("operation %s (%s) failed", record.id, record.name, exc_info=error)
            if record.token.fired:
                self._set(record, status="Cancelled", err=envelope.message(error), code="cancelled")
            else:
                self._set(record, status="Failure", err=envelope.message(error), code=code)
            return
        self._set(record, status="Success", result=result)

    def _trim(self) -> None:
        finished = [r for r in self._records.values() if r.status in DONE]
        for record in finished[: max(0, len(finished) - self._keep)]:
            del self._records[record.id]

    def get(self, op_id: str) -> Record:
        with self._lock:
            record = self._records.get(op_id)
        if record is None:
            raise NotFound(f"operation {op_id!r} not found")
        return record

    def all(self) -> list[Record]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.serial)

    def wait(self, op_id: str, timeout: float) -> Record:
        """The operation once it finished, or as it is after ``timeout`` seconds."""
        record = self.get(op_id)
        record.done.wait(timeout)
        return record

    def cancel(self, op_id: str) -> Record:
        """Ask the operation to stop at its next step (or before it starts); returns it at once."""
        record = self.get(op_id)
        if record.status in DONE:
            from hivectl.errors import Conflict

            raise Conflict(f"operation {op_id} has already finished ({record.status})")
        record.token.cancel()
        if record.status == "Running":
            self._set(record, status="Cancelling")
        return record

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel what is queued or running and stop the workers (the daemon is exiting)."""
        for record in self.all():
            if record.status not in DONE:
                record.token.cancel()
        deadline = time.monotonic() + timeout
        for record in self.all():
            record.done.wait(max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)
