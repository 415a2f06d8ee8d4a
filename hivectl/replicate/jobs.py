"""The replication jobs of this host and what their runs recorded, in vm_dir's ``.config``.

``replication.json`` holds the jobs an administrator made (guest, target, interval, retention policy);
``replication-status.json`` what the runs found (last attempt and success, recovery point, bytes, errors).
Two files so that a run recording its progress never rewrites, or races with, an administrator's edit.
Both are replaced atomically (hivectl/rcfile.atomic_write) under their own lock (hivectl/safety/filelock).
A job's key is ``NAME REMOTE``: one guest may be replicated to several places.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hivectl import validate
from hivectl.errors import ConfigError, Conflict, NotFound
from hivectl.replicate.schedule import parse_every
from hivectl.retention import parse_policy

JOBS_FILE = "replication.json"
STATUS_FILE = "replication-status.json"
_REMOTE_WORD = "remote name (letters, digits, '-', '_', '.') or local:VM_DIR"


@dataclass(frozen=True)
class Job:
    guest: str
    remote: str  # a remote's name (hivectl remote add) or local:VM_DIR (another vm_dir of this host)
    every: int  # seconds
    keep: str  # a retention policy (hivectl/retention), applied on both sides
    created: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.guest} {self.remote}"


def check_remote(value: str, source: str | None = None, key: str = "REMOTE") -> str:
    if value.startswith("local:"):
        spec = value[len("local:"):]
        if not spec.startswith("zfs:") or not validate.NAME_RE.fullmatch(spec[4:].replace("/", "_")):
            raise ConfigError(source, key, value, "local:zfs:POOL/DATASET is another ZFS vm_dir of this host")
        return value
    if not validate.NAME_RE.fullmatch(value):
        raise ConfigError(source, key, value, f"expected a {_REMOTE_WORD}")
    return value


def make_job(guest: str, remote: str, every: str, keep: str, now: float) -> Job:
    validate.guest_name(None, "NAME", guest)
    check_remote(remote)
    parse_policy(keep, None, "--keep")
    return Job(guest, remote, parse_every(every), parse_policy(keep, None, "--keep").text(), now)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ConfigError(str(path), "-", "", f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "-", "", "expected a JSON object")
    return data


def _job_of(path: Path, index: int, raw: Any) -> Job:
    where = f"jobs[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(str(path), where, str(raw), "expected an object")
    try:
        guest = validate.guest_name(str(path), f"{where}.guest", str(raw["guest"]))
        remote = check_remote(str(raw["remote"]), str(path), f"{where}.remote")
        every = parse_every(str(raw["every"]), str(path), f"{where}.every")
        keep = parse_policy(str(raw["keep"]), str(path), f"{where}.keep").text()
    except KeyError as missing:
        raise ConfigError(str(path), where, str(raw), f"missing {missing}") from None
    return Job(guest, remote, every, keep, float(raw.get("created", 0)))


def load(config_dir: Path) -> list[Job]:
    path = config_dir / JOBS_FILE
    raw = _read(path).get("jobs", [])
    if not isinstance(raw, list):
        raise ConfigError(str(path), "jobs", str(raw), "expected a list")
    return [_job_of(path, i, item) for i, item in enumerate(raw)]


def _write(path: Path, data: dict[str, Any]) -> None:
    from hivectl.rcfile import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _jobs_json(jobs: list[Job]) -> dict[str, Any]:
    return {"version": 1, "jobs": [dict(asdict(job), every=f"{job.every}s") for job in jobs]}


def _editing(path: Path, dry_run: bool) -> AbstractContextManager[None]:
    """The file's lock for an edit; none for a dry run, which writes nothing (not even the lock file)."""
    from hivectl.safety.filelock import locked

    return nullcontext() if dry_run else locked(path)


def add(config_dir: Path, job: Job, dry_run: bool = False) -> None:
    path = config_dir / JOBS_FILE
    with _editing(path, dry_run):
        jobs = load(config_dir)
        if any(j.key == job.key for j in jobs):
            raise Conflict(f"{job.guest} is already replicated to {job.remote} ('hivectl replicate remove "
                           f"{job.guest} {job.remote}' first)")
        if not dry_run:
            _write(path, _jobs_json([*jobs, job]))


def remove(config_dir: Path, guest: str, remote: str | None, dry_run: bool = False) -> list[Job]:
    path = config_dir / JOBS_FILE
    with _editing(path, dry_run):
        jobs = load(config_dir)
        gone = [j for j in jobs if j.guest == guest and (remote is None or j.remote == remote)]
        if not gone:
            raise NotFound(f"no replication job for {guest}" + (f" to {remote}" if remote else ""))
        if remote is None and len(gone) > 1:
            raise Conflict(f"{guest} is replicated to {', '.join(j.remote for j in gone)}: name the REMOTE")
        if not dry_run:
            _write(path, _jobs_json([j for j in jobs if j not in gone]))
    return gone


def read_status(config_dir: Path) -> dict[str, dict[str, Any]]:
    data = _read(config_dir / STATUS_FILE)
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}


@contextmanager
def editing_status(config_dir: Path, key: str) -> Iterator[dict[str, Any]]:
    """The status record of job ``key``, written back (atomically, under the lock) after the block."""
    from hivectl.safety.filelock import locked

    path = config_dir / STATUS_FILE
    with locked(path):
        data = _read(path)
        record = data.setdefault(key, {})
        yield record
        _write(path, data)
