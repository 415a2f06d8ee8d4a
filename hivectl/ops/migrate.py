"""``hivectl migrate NAME REMOTE``: move a guest to another host, cold or warm (docs/migration.md).

The order is what keeps the guest safe (issue 12: "an interrupted migration leaves the guest running on
the source, with no half guest on the target"):

1. the migration lock on this host (``hivectl/migrate/lock.py``); the receiver takes the other host's;
2. the preflight, both ends, before anything moves: this host's problems (disks that live outside the
   guest directory, a guest that another host runs, files that cannot be sent) and the target's answer to
   ``migrate-facts`` (``hivectl/migrate/facts.py``); every problem is listed, one per line;
3. the receiver is opened (``migrate-recv``): it builds the guest in a hidden staging directory;
4. warm only (the guest runs): rounds of changed blocks while the guest runs, until the last round's
   size at the measured rate fits ``--max-downtime`` (or ``MAX_ROUNDS`` rounds);
5. the guest is stopped (cold: first of all), and the final round sends what changed since;
6. ``commit``: the receiver publishes the guest under its name with one rename;
7. the guest is started on the target (if it was running here) by the receiver itself, as part of the
   commit; the downtime is measured from the stop request here to the receiver's answer that it started;
8. only then is the source removed (unless ``--keep-source``).

A failure anywhere before 7 succeeds undoes the far side (the receiver drops its staging directory when
its stream ends without a commit; a published guest that would not start is destroyed there by the
receiver) and starts the guest here again if this migration stopped it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hivectl import validate
from hivectl.context import Context
from hivectl.errors import ConfigError, HivectlError
from hivectl.journal.events import emit_quietly
from hivectl.migrate import wire
from hivectl.migrate.lock import migration_lock
from hivectl.migrate.send import Round, TreeSender, tree_problems
from hivectl.migrate.transport import Transport
from hivectl.model import backing
from hivectl.store import GuestRef

MAX_ROUNDS = 10  # warm rounds before the final one; a guest that writes faster than the link never converges
DEFAULT_MAX_DOWNTIME = 5.0
STOP_TIMEOUT = 90.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MigrateRequest:
    """``hivectl migrate NAME REMOTE [--warm] [--max-downtime S] [--rename NEW] [--keep-source]``."""

    name: str
    remote: str
    warm: bool = False
    max_downtime: float = DEFAULT_MAX_DOWNTIME
    rename: str | None = None
    keep_source: bool = False
    datastore: str | None = None  # on the target; default: the datastore of the same name as the source's
    dry_run: bool = False
    to_vm_bhyve: bool = False  # the target runs vm-bhyve: speak its protocol (hivectl/migrate/vmbhyve.py)


@dataclass
class MigrateResult:
    name: str
    target: str
    remote: str
    mode: str  # "cold" or "warm"
    was_running: bool = False
    started: bool = False
    rounds: list[Round] = field(default_factory=list)
    downtime: float | None = None  # seconds from the stop request here to "started" there
    converged: bool | None = None  # warm: the last delta fitted --max-downtime
    source_kept: bool = False
    transport: str = "file"  # "zfs": zfs send/recv of the guest's datasets; "file": the sparse file stream
    disks: list[str] = field(default_factory=list)  # how each disk travels, one line each
    retries: list[dict[str, Any]] = field(default_factory=list)  # zfs: streams that broke and were sent again
    phases: dict[str, float] = field(default_factory=dict)  # seconds of the downtime's parts: stop, final, commit
    plan: list[str] = field(default_factory=list)  # dry run: the steps, in words
    problems: list[str] = field(default_factory=list)  # dry run: what the preflight found (a run refuses)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "remote": self.remote, "mode": self.mode,
                "was_running": self.was_running, "started": self.started,
                "rounds": [r.as_json() for r in self.rounds],
                "bytes": sum(r.payload for r in self.rounds),
                "downtime": None if self.downtime is None else round(self.downtime, 3),
                "phases": {k: round(v, 3) for k, v in self.phases.items()},
                "converged": self.converged, "source_kept": self.source_kept, "plan": self.plan,
                "problems": self.problems, "transport": self.transport, "disks": self.disks,
                "retries": self.retries}


class PreflightFailed(HivectlError):
    """The preflight found problems; the message lists them, one per line."""


def check_downtime(value: float) -> float:
    if not value > 0 or value > 3600:
        raise ConfigError(None, "--max-downtime", str(value), "seconds, more than 0 and at most 3600")
    return value


def source_problems(ctx: Context, ref: GuestRef, zvols: bool = False) -> list[str]:
    """What on this host keeps ``ref`` from being migrated: every disk must live in its directory (or be a
    zvol of its dataset, with ``zvols``: ``zfs send -R`` takes those along)."""
    from hivectl.runtime import guest_state

    problems: list[str] = []
    config = ref.config()
    problems += [str(e) for e in config.errors()]
    for disk in config.disks:
        kind = backing.of(disk.dev)
        if disk.is_cd:
            continue
        if kind.zvol and zvols:
            continue
        if not kind.in_directory:
            problems.append(f"{config.path}: {disk.key}_dev={disk.dev}: only file disks in the guest directory "
                            "are migrated so far (zvols and disks elsewhere are not)")
        elif "/" in disk.name:
            problems.append(f"{config.path}: {disk.key}_name={disk.name}: a disk outside the guest directory "
                            "is not migrated")
    state = guest_state(ref.directory, ref.name)
    if state.state == "Locked":
        problems.append(f"{ref.name} is locked by host {state.host}: it may run there")
    if state.state == "Suspended":
        problems.append(f"{ref.name} is suspended: resume it (or 'resume --discard') before migrating")
    problems += tree_problems(ref.directory, ref.name)
    return problems


def migrate(ctx: Context, transport: Transport | None, request: MigrateRequest,
            progress: Progress | None = None) -> MigrateResult:
    """Run one migration (see the module's docstring for the order and what a failure leaves).

    ``transport`` is None for ``to_vm_bhyve``: that target is reached by plain commands (``ssh HOST ...``)."""
    say = progress or (lambda _line: None)
    if request.to_vm_bhyve:
        return _to_vm_bhyve(ctx, request, say)
    assert transport is not None
    ref = ctx.store.get(request.name)
    new = request.rename or ref.name
    validate.guest_name(None, "--rename", new, new=True)
    max_downtime = check_downtime(request.max_downtime)
    datastore = request.datastore or ref.datastore.name
    config_dir = ctx.store.config_dir
    held = contextlib.nullcontext() if request.dry_run else migration_lock(config_dir, ref.name, "migration")
    with held:  # a dry run changes nothing, not even the lock file
        from hivectl.runtime import guest_state

        running = guest_state(ref.directory, ref.name).running
        mode = "warm" if request.warm and running else "cold"
        result = MigrateResult(ref.name, new, transport.name, mode, was_running=running)
        found, facts = _target_problems(transport, new, datastore, ref.conf_path.read_text())
        result.transport, result.disks, mismatch = choose_transport(ctx, ref, facts, datastore, transport.name)
        problems = source_problems(ctx, ref, zvols=result.transport == "zfs") + mismatch + found
        for line in result.disks:
            say(f"preflight: {line}")
        if request.dry_run:  # as start's: the findings are shown, not fatal, in a dry run
            result.plan = _steps(ref, new, datastore, transport.name, request, running, mode, result.transport)
            result.problems = problems
            return result
        if problems:
            raise PreflightFailed(f"cannot migrate {ref.name} to {transport.name}:\n" +
                                  "\n".join(f"  {p}" for p in problems))
        _event(config_dir, ref.name, "started", {"to": transport.name, "as": new, "mode": mode})
        try:
            move = _move_zfs if result.transport == "zfs" else _move
            move(ctx, transport, ref, new, datastore, request, result, max_downtime, say)
        except BaseException as error:
            _event(config_dir, ref.name, "failed", {"to": transport.name, "error": str(error)})
            raise
        _event(config_dir, ref.name, "done", {"to": transport.name, "as": new, "mode": mode,
                                              "bytes": sum(r.payload for r in result.rounds),
                                              "downtime": result.downtime})
        if not request.keep_source:
            from hivectl.ops.guests import plan_destroy

            say(f"removing {ref.name} from this host")
            plan_destroy(ctx.store, ref.name).apply(ctx.host)
        result.source_kept = request.keep_source
        return result


def _event(config_dir: Any, name: str, phase: str, details: dict[str, Any]) -> None:
    emit_quietly(str(config_dir), "migration", f"/guests/{name}", {"phase": phase, **details})


def choose_transport(ctx: Context, ref: GuestRef, facts: dict[str, Any], datastore: str,
                     remote: str) -> tuple[str, list[str], list[str]]:
    """How the guest's disks travel, and what keeps them from travelling: ``"zfs"`` (zfs send/recv of the
    guest's dataset and its zvols, hivectl/migrate/zfssend.py) when the guest is a dataset of this host's
    vm_dir dataset and the target's datastore is its vm_dir dataset too; otherwise ``"file"``, the sparse
    file stream, which carries file disks whatever the datastores are (the documented fallback: a ZFS
    guest's files into a directory datastore there, a directory guest's into a staged dataset there), but
    not zvols. Returns (transport, one line per disk, problems)."""
    from hivectl.migrate.zfssend import disk_transports

    here_zfs = ref.dataset is not None and ref.datastore == ctx.store.default
    there = facts.get("zfs_dataset")
    if here_zfs and isinstance(there, str) and there:
        return "zfs", disk_transports(ref, True), []
    if ref.dataset is None:
        why = f"{ref.name} is in datastore {ref.datastore.name} ({ref.datastore.spec}), not on ZFS here"
    elif not here_zfs:
        why = f"{ref.name} is in datastore {ref.datastore.name}, not this host's vm_dir dataset"
    elif "zfs_dataset" not in facts:
        why = f"{remote} does not receive zfs streams (an older hivectl)"
    else:
        why = f"datastore {datastore} on {remote} is not its vm_dir dataset on ZFS"
    lines = disk_transports(ref, False)
    problems = [f"{line} ({why})" for line in lines if line.endswith("which only a zfs send can carry")]
    if ref.dataset is not None:
        lines.append(f"fallback: {why}, so the files of {ref.dataset} go as the file stream")
    return "file", lines, problems


def _target_problems(transport: Transport, new: str, datastore: str, text: str) -> tuple[list[str], dict[str, Any]]:
    with transport.stream(["migrate-facts"]) as pipe:
        pipe.stdin.write(json.dumps({"name": new, "datastore": datastore, "config": text}).encode() + b"\n")
        pipe.stdin.flush()
        answer = wire.read_answer(pipe.stdout)
    found = answer.get("problems", [])
    if not isinstance(found, list):
        raise wire.StreamError(f"{transport.name} answered migrate-facts without a list of problems")
    return [f"{transport.name}: {p}" for p in found], answer


def _steps(ref: GuestRef, new: str, datastore: str, remote: str, request: MigrateRequest,
           running: bool, mode: str, kind: str = "file") -> list[str]:
    if kind == "zfs":
        steps = [f"snapshot {ref.dataset} and zfs send it to {remote} datastore {datastore} as {new} "
                 "(destroyed there on failure, published on commit)"]
    else:
        steps = [f"send {ref.directory} to {remote} datastore {datastore} as {new} (staged, published on commit)"]
    if mode == "warm":
        rounds = "incremental zfs sends" if kind == "zfs" else "warm rounds"
        steps.insert(0, f"{rounds} while {ref.name} runs, until one fits {request.max_downtime:g} s")
    if running:
        steps.insert(1 if mode == "warm" else 0, f"stop {ref.name} here")
        steps.append(f"start {new} on {remote}")
    steps.append(f"keep {ref.name} here" if request.keep_source else f"destroy {ref.name} here")
    return steps


def _move(ctx: Context, transport: Transport, ref: GuestRef, new: str, datastore: str,
          request: MigrateRequest, result: MigrateResult, max_downtime: float, say: Progress) -> None:
    stopped_here = False
    published = False
    try:
        with transport.stream(["migrate-recv", new, datastore]) as pipe:
            wire.read_answer(pipe.stdout)  # the receiver holds its lock and staging directory
            sender = TreeSender(ref.directory, ref.name, new)
            if result.mode == "warm":
                result.converged = _warm_rounds(lambda: sender.send_round(pipe.stdin, pipe.stdout), result,
                                                max_downtime, say)
            stop_at = time.monotonic()
            if result.was_running:
                say(f"stopping {ref.name}")
                _stop(ctx, ref)
                stopped_here = True
                result.phases["stop"] = time.monotonic() - stop_at
            final = sender.send_round(pipe.stdin, pipe.stdout)
            result.phases["final"] = final.seconds
            result.rounds.append(final)
            say(f"{'final' if result.mode == 'warm' else 'full'} round: {final.payload} bytes in "
                f"{final.seconds:.2f} s")
            if result.was_running:
                say(f"starting {new} on {transport.name}")
            committed_at = time.monotonic()
            wire.write_frame(pipe.stdin, {"t": "commit", "start": result.was_running})
            pipe.stdin.flush()
            answer = wire.read_answer(pipe.stdout)  # the receiver published it (and started it, if asked)
            published = True
            if result.was_running and not answer.get("started"):
                raise HivectlError(f"{transport.name} published {new} but did not start it (is its hivectl older?)")
            result.phases["commit"] = time.monotonic() - committed_at
        if result.was_running:
            result.started = True
            result.downtime = time.monotonic() - stop_at
            say(f"downtime {result.downtime:.2f} s")
    except (BrokenPipeError, ConnectionError) as error:
        notes = _undo(ctx, transport, ref, new, published, stopped_here)
        raise wire.StreamError("; ".join([f"the stream to {transport.name} broke ({error}); {ref.name} was not "
                                          "moved", *notes])) from None
    except HivectlError as error:
        notes = _undo(ctx, transport, ref, new, published, stopped_here)
        if notes:
            raise HivectlError("; ".join([str(error), *notes])) from error
        raise
    except BaseException:
        _undo(ctx, transport, ref, new, published, stopped_here)
        raise


def _move_zfs(ctx: Context, transport: Transport, ref: GuestRef, new: str, datastore: str,
              request: MigrateRequest, result: MigrateResult, max_downtime: float, say: Progress) -> None:
    """As ``_move``, with zfs send rounds (hivectl/migrate/zfssend.py) under the target's ``migrate-zfs``
    session: a failure before its commit destroys what arrived there; the migration's snapshots are
    destroyed here after success (with --keep-source; without it the guest goes with them) and after a
    failure."""
    from hivectl.migrate.zfssend import ZfsSender

    stopped_here = False
    published = False
    sender = ZfsSender(ctx, transport, ref, new, say)
    try:
        with transport.stream(["migrate-zfs", new, datastore]) as pipe:
            opened = wire.read_answer(pipe.stdout)  # the target holds its lock; the dataset is free there
            sender.control = pipe
            say(f"zfs send of {sender.dataset} into {opened.get('dataset')} on {transport.name}")
            if result.mode == "warm":
                result.converged = _warm_rounds(sender.send_round, result, max_downtime, say)
            stop_at = time.monotonic()
            if result.was_running:
                say(f"stopping {ref.name}")
                _stop(ctx, ref)
                stopped_here = True
                result.phases["stop"] = time.monotonic() - stop_at
            final = sender.send_round()
            result.phases["final"] = final.seconds
            result.rounds.append(final)
            say(f"{'final incremental' if result.mode == 'warm' else 'full'} zfs send: {final.payload} bytes in "
                f"{final.seconds:.2f} s")
            if result.was_running:
                say(f"starting {new} on {transport.name}")
            committed_at = time.monotonic()
            answer = sender.commit(result.was_running)
            published = True
            if result.was_running and not answer.get("started"):
                raise HivectlError(f"{transport.name} published {new} but did not start it")
            result.phases["commit"] = time.monotonic() - committed_at
            pipe.stdin.close()
        if result.was_running:
            result.started = True
            result.downtime = time.monotonic() - stop_at
            say(f"downtime {result.downtime:.2f} s")
    except BaseException as error:
        notes = _undo(ctx, transport, ref, new, published, stopped_here) + sender.remove_snapshots()
        result.retries = sender.retries
        if isinstance(error, (BrokenPipeError, ConnectionError)):
            raise wire.StreamError("; ".join([f"the stream to {transport.name} broke ({error}); {ref.name} was "
                                              "not moved", *notes])) from None
        if isinstance(error, HivectlError) and notes:
            raise HivectlError("; ".join([str(error), *notes])) from error
        raise
    result.retries = sender.retries
    if request.keep_source:
        for note in sender.remove_snapshots():
            say(f"warning: {note}")


def _undo(ctx: Context, transport: Transport | None, ref: GuestRef, new: str, published: bool,
          stopped_here: bool) -> list[str]:
    """After a failure: the guest off the target if it was published there, and running here again if this
    migration stopped it. What could not be undone, one line each (added to the error)."""
    notes: list[str] = []
    if published and transport is not None:
        try:
            transport.call("destroy", {"name": new})
        except Exception as error:
            notes.append(f"{new} could not be removed from {transport.name}: {error}")
    if stopped_here:
        from hivectl.ops import lifecycle

        try:
            started = lifecycle.start(ctx, lifecycle.StartRequest((ref.name,)))
            notes += started.errors
        except HivectlError as error:
            notes.append(f"{ref.name} could not be started here again: {error}")
    return notes


def _warm_rounds(send_round: Callable[[], Round], result: MigrateResult, max_downtime: float,
                 say: Progress) -> bool:
    """Send rounds while the guest runs; True once the next round is expected to fit ``max_downtime``.

    The estimate is the last round's size at the rate the rounds so far achieved (bytes over seconds,
    the receiver's fsync included), plus the time a round takes to re-read the data even when nothing
    changed (the scan), which the final round pays too.
    """
    for number in range(1, MAX_ROUNDS + 1):
        sent = send_round()
        result.rounds.append(sent)
        total_bytes = sum(r.payload for r in result.rounds)
        total_seconds = sum(r.seconds for r in result.rounds) or 1e-6
        rate = max(total_bytes / total_seconds, 1.0)
        scan = min(r.seconds for r in result.rounds)
        estimate = sent.payload / rate + scan if number > 1 else sent.seconds
        say(f"warm round {number}: {sent.payload} bytes in {sent.seconds:.2f} s; the next is estimated at "
            f"{estimate:.2f} s")
        if number > 1 and estimate <= max_downtime / 2:
            return True
    return False


def _stop(ctx: Context, ref: GuestRef) -> None:
    from hivectl.ops import lifecycle

    outcome = lifecycle.stop(ctx, lifecycle.StopRequest((ref.name,), STOP_TIMEOUT))
    from hivectl.runtime import guest_state

    if guest_state(ref.directory, ref.name).running:
        raise HivectlError(f"{ref.name} did not stop ({'; '.join(outcome.notes) or 'still running'}); "
                           "nothing was moved")


def _to_vm_bhyve(ctx: Context, request: MigrateRequest, say: Progress) -> MigrateResult:
    """``--to-vm-bhyve``: vm-bhyve's own stages (hivectl/migrate/vmbhyve.py), with hivectl's locks, events,
    failure handling and measured downtime around them."""
    from hivectl.migrate import vmbhyve
    from hivectl.migrate.transport import command_prefix
    from hivectl.runtime import guest_state

    ref = ctx.store.get(request.name)
    new = request.rename or ref.name
    validate.guest_name(None, "--rename", new, new=True)
    remote = vmbhyve.VmBhyveHost(request.remote, command_prefix(request.remote), ctx.host)
    datastore = request.datastore or ref.datastore.name
    config_dir = ctx.store.config_dir
    held = contextlib.nullcontext() if request.dry_run else migration_lock(config_dir, ref.name, "migration")
    with held:
        running = guest_state(ref.directory, ref.name).running
        mode = "warm" if request.warm and running else "cold"
        result = MigrateResult(ref.name, new, request.remote, mode, was_running=running)
        problems = [p for p in source_problems(ctx, ref, zvols=True)]
        if ref.dataset is None:
            problems.append(f"{ref.name} is in datastore {ref.datastore.name} ({ref.datastore.spec}), a plain "
                            "directory: vm-bhyve migrates ZFS guests only")
        if any(key.startswith("passthru") and value for key, value in ref.config().values.items()):
            problems.append(f"{ref.name} uses PCI passthrough, which vm-bhyve refuses to migrate")
        if request.dry_run:
            result.plan = [f"ask {request.remote}: vm migrate -cd {datastore}",
                           f"zfs send -R {ref.dataset}@STAMP-s1 | zfs recv there",
                           *([f"stop {ref.name} here", "zfs send -R -i of STAMP-s2 there"] if running else []),
                           *([f"mv {ref.name}.conf {new}.conf there"] if new != ref.name else []),
                           *([f"vm start {new} there"] if running else [])]
            result.problems = problems
            return result
        if problems:
            raise PreflightFailed(f"cannot migrate {ref.name} to {request.remote}:\n" +
                                  "\n".join(f"  {p}" for p in problems))
        _event(config_dir, ref.name, "started", {"to": request.remote, "as": new, "mode": mode, "vm-bhyve": True})
        stopped: list[bool] = []

        def stop() -> None:
            _stop(ctx, ref)
            stopped.append(True)

        try:
            figures = vmbhyve.migrate(remote, ref, new, datastore, running, request.warm, stop, say)
        except BaseException as error:
            notes = _undo(ctx, None, ref, new, False, bool(stopped))
            _event(config_dir, ref.name, "failed", {"to": request.remote, "error": str(error), "notes": notes})
            raise
        assert ref.dataset is not None
        result.started = running
        result.downtime = figures.get("downtime")
        _event(config_dir, ref.name, "done", {"to": request.remote, "downtime": result.downtime})
        if request.keep_source:
            vmbhyve.remove_snapshots(ctx.host, ref.dataset, figures["snapshots"])
        else:
            from hivectl.ops.guests import plan_destroy

            say(f"removing {ref.name} from this host")
            plan_destroy(ctx.store, ref.name).apply(ctx.host)
        result.source_kept = request.keep_source
        return result
