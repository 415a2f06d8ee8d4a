"""One run of a replication job, and ``--run-due``: every job whose time has come.

A run, on the source host:

1. unless an earlier snapshot still waits to be sent, takes ``repl-YYYYmmddTHHMMSSZ`` (the run's time, UTC)
   of the guest, recursively, with ``hivectl:replication=pending`` so that no pruning removes it before
   it is sent (a running guest's snapshot is crash-consistent, as ``snapshot -f``);
2. sends it (hivectl/transfer/send.py: an interrupted earlier send is resumed first);
3. holds the new last common snapshot on both sides and releases the previous one;
4. clears ``pending`` on what is now on the other side;
5. prunes the job's ``repl-`` snapshots on both sides with its policy (hivectl/retention); the last common
   snapshot counts as protected there and is held besides, pending ones are never removed;
6. marks the copy as a replica on the other side (hivectl/transfer/replica.py) and records the outcome.

Retention reads a replication snapshot's time from its name, not from ZFS's ``creation``, so that the
times a run is given (``--now``, the tests' clock) are the times the policy counts in.

A failure is recorded with its one-line message and counted; the schedule retries with back-off. A job
already running (cron and hivectld, or a slow run and the next minute's cron) is skipped, not run twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hivectl.context import Context
from hivectl.errors import HivectlError
from hivectl.replicate import jobs as jobstore
from hivectl.replicate.jobs import Job
from hivectl.replicate.schedule import is_due, next_due
from hivectl.transfer import side
from hivectl.transfer.peer import LocalPeer, Peer, StreamPeer

PREFIX = "repl-"
PROGRESS_EVERY = 4 << 20  # record the bytes sent so far at most every 4 MiB


def snapshot_name(now: float) -> str:
    return PREFIX + datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def connect(ctx: Context, remote: str) -> Peer:
    """The job's other side: ``local:VM_DIR`` on this host, else a remote of hivectl/remote."""
    if remote.startswith("local:"):
        return LocalPeer(Context(vm_dir=remote[len("local:"):], host=ctx.host), remote)
    from hivectl.remote import connect as connect_remote

    return StreamPeer(connect_remote(ctx, remote), remote)


@dataclass
class RunResult:
    job: str
    snapshot: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    bytes: int = 0
    common: str | None = None
    pruned_source: list[str] = field(default_factory=list)
    pruned_target: list[str] = field(default_factory=list)
    resumable: bool = False
    error: str | None = None
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pending(info: dict[str, Any]) -> list[str]:
    top = info["members"].get("", {"snapshots": []})
    return [row[0] for row in top["snapshots"] if row[4] and str(row[0]).startswith(PREFIX)]


def _time_of(name: str) -> float | None:
    """The time in a snapshot's name (``repl-...Z``: the run that took it), None for a name without one."""
    from hivectl.errors import ConfigError
    from hivectl.retention.names import time_of

    try:
        return time_of(name)
    except ConfigError:
        return None


def run_job(ctx: Context, job: Job, now: float, peer: Peer | None = None) -> RunResult:
    """Run ``job`` once at time ``now``; errors are recorded, not raised."""
    from contextlib import ExitStack

    from hivectl.errors import Conflict
    from hivectl.safety.filelock import locked

    result = RunResult(job.key)
    config_dir = ctx.store.config_dir
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(config_dir / f"replication-run-{job.guest}", timeout=0.0))
        except Conflict:
            result.skipped = "already running"
            return result
        try:
            _attempt(ctx, job, now, peer, result)
        except HivectlError as error:
            result.error = str(error).splitlines()[0] if str(error) else type(error).__name__
        _record(config_dir, job, now, result)
    return result


def _record(config_dir: Path, job: Job, now: float, result: RunResult) -> None:
    with jobstore.editing_status(config_dir, job.key) as record:
        record["last_attempt"] = now
        record["bytes_last"] = result.bytes
        record["bytes_total"] = int(record.get("bytes_total", 0)) + result.bytes
        if result.error is None:
            record.update(last_success=now, failures=0, last_error=None, common=result.common,
                          recovery_point=_time_of(result.common) if result.common else None,
                          resumable=result.resumable, sent=result.sent, running_bytes=None)
        else:
            record["failures"] = int(record.get("failures", 0)) + 1
            record["last_error"] = result.error
            record["last_error_at"] = now
            record["running_bytes"] = None


def _attempt(ctx: Context, job: Job, now: float, peer: Peer | None, result: RunResult) -> None:
    from hivectl.transfer.send import sync

    other = peer or connect(ctx, job.remote)
    src = side.state(ctx, job.guest)
    if not src["exists"]:
        raise HivectlError(f"{job.guest} has no dataset {src['dataset']} here (replication needs ZFS)")
    waiting = _pending(src)
    if not waiting:
        snap = snapshot_name(now)
        dataset = src["dataset"]
        ctx.host.run(["zfs", "snapshot", "-r", "-o", f"{side.PENDING}=pending", f"{dataset}@{snap}"])
        result.snapshot = snap
    else:
        result.snapshot = waiting[-1]
    marks = [0]

    def progress(sent: int) -> None:
        if sent - marks[0] >= PROGRESS_EVERY:
            marks[0] = sent
            with jobstore.editing_status(ctx.store.config_dir, job.key) as record:
                record["running_bytes"] = sent

    synced = sync(ctx, other, job.guest, progress=progress)
    result.sent = [s.as_json() for s in synced.sent]
    result.bytes = synced.bytes
    result.resumable = synced.resumable
    result.common = synced.common
    from hivectl.runtime import hostname

    other.request(["mark", job.guest, _json({"host": hostname(), "vm_dir": ctx.settings.vm_dir,
                                             "guest": job.guest, "job": job.key})])
    if synced.common is None:
        return
    side.hold(ctx, job.guest, synced.common)
    other.request(["hold", job.guest, synced.common])
    from hivectl.transfer.send import replicated

    after_src, after_dst = side.state(ctx, job.guest), other.state(job.guest)
    done = [n for n in replicated(after_src, after_dst) if n in _pending(after_src)]
    if done:
        side.clear_pending(ctx, job.guest, done)
    result.pruned_source = side.prune(ctx, job.guest, job.keep, PREFIX, [synced.common])
    result.pruned_target = other.request(["prune", job.guest, job.keep, PREFIX, synced.common]) or []


def _json(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def due_jobs(ctx: Context, now: float) -> list[Job]:
    status = jobstore.read_status(ctx.store.config_dir)
    due = []
    for job in jobstore.load(ctx.store.config_dir):
        record = status.get(job.key, {})
        last = record.get("last_attempt")
        if is_due(job.every, float(last) if last is not None else None, int(record.get("failures", 0)), now):
            due.append(job)
    return due


def run_due(ctx: Context, now: float | None = None) -> list[RunResult]:
    """Run every job that is due at ``now`` (default: the clock), one after the other."""
    moment = time.time() if now is None else now
    return [run_job(ctx, job, moment) for job in due_jobs(ctx, moment)]


def status(ctx: Context, now: float | None = None) -> list[dict[str, Any]]:
    """Per job: target, interval, policy, last attempt and success, recovery point and its age, bytes,
    consecutive failures and the last error, next due time."""
    moment = time.time() if now is None else now
    records = jobstore.read_status(ctx.store.config_dir)
    rows = []
    for job in jobstore.load(ctx.store.config_dir):
        record = records.get(job.key, {})
        point = record.get("recovery_point")
        last = record.get("last_attempt")
        failures = int(record.get("failures", 0))
        rows.append({
            "guest": job.guest, "remote": job.remote, "every": job.every, "keep": job.keep,
            "last_attempt": last, "last_success": record.get("last_success"), "snapshot": record.get("common"),
            "recovery_point": point, "recovery_point_age": (moment - float(point)) if point is not None else None,
            "bytes_last": int(record.get("bytes_last", 0)), "bytes_total": int(record.get("bytes_total", 0)),
            "running_bytes": record.get("running_bytes"), "failures": failures,
            "last_error": record.get("last_error"), "resumable": record.get("resumable"),
            "next_due": next_due(job.every, float(last) if last is not None else None, failures),
        })
    return rows

