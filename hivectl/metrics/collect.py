"""One scrape: every guest's state and counters, the host's capacity and the datastores' usage.

The guests come from ``list``'s own scan (``hivectl/ops/listing.py``: one file read per guest, no process),
so the metrics show exactly the guests and states ``hivectl list`` shows. Only running guests are asked
for counters. The per-guest sources that are a file read (``/proc``, ``/sys``) are read inline; those that
are a process (FreeBSD's ``bhyvectl``/``rctl``) or a socket (QEMU's QMP) run on a small thread pool, so a
scrape of many guests is bounded by the slowest few rather than by their sum. Host-wide sources
(``netstat``, ``sysctl``) run once per scrape.

A source that fails (a guest stopped between the scan and the read, a monitor that does not answer, a
kernel without RACCT) leaves its series out and adds one line to ``Snapshot.errors``; a scrape never
fails because one guest did.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.metrics.sample import DatastoreSample, DiskSample, GuestSample, LastExit, Snapshot
from hivectl.model.layout import LAST_RUN, QMP_CONTROL_SOCKET, SUPERVISOR_STATE
from hivectl.store import Store

WORKERS = 8  # concurrent per-guest sources (processes or QMP connections) in one scrape
QMP_TIMEOUT = 1.0  # a monitor that takes longer is left out of this scrape


def _json(path: str) -> dict[str, object]:
    """A state file's JSON object, as ``hivectl.runtime.read_json`` reads it (missing or damaged: empty),
    with two system calls: two of these per running guest and scrape."""
    import json

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        data = json.loads(os.read(fd, 1 << 20))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else {}


def _memory(conf: str, text: str) -> int | None:
    from hivectl.validate import memory

    try:
        return memory(Path(conf), "memory", text) if text else None
    except HivectlError:
        return None


def _last_exit(directory: str) -> tuple[int, LastExit | None]:
    """(restarts, last exit) from the supervisor's ``hivectl.last``."""
    data = _json(f"{directory}/{LAST_RUN}")
    restarts = data.get("restarts")
    count = restarts if isinstance(restarts, int) and restarts >= 0 else 0
    outcome, status, when = data.get("outcome"), data.get("status"), data.get("time")
    if isinstance(outcome, str) and (status is None or isinstance(status, int)) and isinstance(when, int | float):
        return count, LastExit(outcome, status, float(when))
    return count, None


def _ports(state: dict[str, object]) -> list[tuple[str, str]]:
    """(networkN, tap) of each port the supervisor recorded for the run."""
    found: list[tuple[str, str]] = []
    ports = state.get("ports")
    for port in ports if isinstance(ports, list) else []:
        if isinstance(port, dict) and isinstance(port.get("index"), int) and port.get("ifname"):
            found.append((f"network{port['index']}", str(port["ifname"])))
    return found


def guests(store: Store) -> tuple[list[GuestSample], dict[str, str]]:
    """Every guest as ``list`` sees it (no counters yet) and each one's directory."""
    from hivectl.ops.listing import list_guests

    directories = {d.name: d.directory for d in store.datastores()}
    samples, where = [], {}
    for row in list_guests(store):
        directory = f"{directories[row.datastore]}/{row.name}"
        vcpus = int(row.cpu) if row.cpu.isdigit() else (1 if not row.cpu else None)
        sample = GuestSample(row.name, row.datastore, row.state.split()[0], vcpus,
                             _memory(f"{directory}/{row.name}.conf", row.memory), row.pid)
        sample.restarts, sample.last_exit = _last_exit(directory)
        samples.append(sample)
        where[row.name] = directory
    return samples, where


def datastores(store: Store) -> list[DatastoreSample]:
    """Size and free space of the file system under each datastore (``statvfs(3)``, no process)."""
    found = []
    for datastore in store.datastores():
        try:
            st = os.statvfs(datastore.directory)
        except OSError:
            continue
        found.append(DatastoreSample(datastore.name, datastore.directory, st.f_blocks * st.f_frsize,
                                     st.f_bavail * st.f_frsize, st.f_bfree * st.f_frsize))
    return found


def _pooled(jobs: list[Callable[[], None]]) -> None:
    if not jobs:
        return
    if len(jobs) == 1:
        jobs[0]()
        return
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(jobs))) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


class _EarlyQueries:
    """The QMP queries of every guest directory that has a monitor socket, started before ``list`` has said
    which guests run: the monitors answer while this thread reads the guests' files and /proc, instead of
    after. Answers of guests that turn out not to be running are dropped; a running guest whose socket
    appeared meanwhile is asked afterwards."""

    def __init__(self, store: Store) -> None:
        import threading

        from hivectl.metrics import blockstats

        self.monitors: dict[str, Path] = {}
        for datastore in store.datastores():
            if not datastore.holds_guests:
                continue
            try:
                entries = list(os.scandir(datastore.directory))
            except OSError:
                continue
            for entry in entries:
                socket = f"{entry.path}/{QMP_CONTROL_SOCKET}"
                if entry.is_dir(follow_symlinks=False) and os.access(socket, os.F_OK):
                    self.monitors.setdefault(entry.name, Path(socket))
        self.answers: dict[str, list[DiskSample] | str] = {}
        self._thread = threading.Thread(target=lambda: self.answers.update(
            blockstats.collect(list(self.monitors.items()), QMP_TIMEOUT)), name="blockstats", daemon=True)
        self._thread.start()

    def result(self, monitors: list[tuple[str, Path]]) -> dict[str, list[DiskSample] | str]:
        """The answers of ``monitors`` (the running guests' (name, socket)), once every one is in."""
        from hivectl.metrics import blockstats

        self._thread.join()
        asked = {name for name, path in monitors if self.monitors.get(name) == path and name in self.answers}
        found = {name: self.answers[name] for name in asked}
        late = [(name, path) for name, path in monitors if name not in asked]
        found.update(blockstats.collect(late, QMP_TIMEOUT) if late else {})
        return found


def _linux(samples: list[GuestSample], where: dict[str, str], errors: list[str], early: _EarlyQueries) -> None:
    """The QMP queries (``early``, waiting on the QEMUs) run on a thread while this one reads /proc and the
    state files."""
    from hivectl.metrics import linux

    running = [g for g in samples if g.running and g.pid is not None]
    if not running:
        early.result([])
        return
    now = time.time()
    try:
        taps = linux.interfaces()
    except OSError as error:
        errors.append(f"/proc/net/dev: {error}")
        taps = {}
    for guest in running:
        assert guest.pid is not None
        try:
            guest.cpu_seconds, started = linux.process_times(guest.pid)
            guest.uptime_seconds = max(0.0, now - started)
            guest.rss_bytes = linux.resident_bytes(guest.pid)
        except (OSError, ValueError, IndexError) as error:
            errors.append(f"{guest.name}: /proc/{guest.pid}: {error}")
            continue
        state = _json(f"{where[guest.name]}/{SUPERVISOR_STATE}")
        guest.nics = [linux.nic_counters(device, tap, taps[tap]) for device, tap in _ports(state) if tap in taps]
    answers = early.result([(g.name, Path(where[g.name]) / QMP_CONTROL_SOCKET) for g in running])
    by_name = {guest.name: guest for guest in running}
    for name, disks in answers.items():
        if isinstance(disks, str):
            errors.append(f"{name}: {disks}")
        else:
            by_name[name].disks = disks


def _freebsd(host: Host, samples: list[GuestSample], where: dict[str, str], errors: list[str]) -> None:
    from hivectl.metrics import freebsd

    running = [g for g in samples if g.running and g.pid is not None]
    if not running:
        return
    taps: dict[str, dict[str, int]] = {}
    try:
        taps = freebsd.interfaces(host)
    except HivectlError as error:
        errors.append(str(error))
    now = time.time()
    racct = [True]  # one failing rctl (no RACCT in the kernel) is enough to know: ask no further
    jobs: list[Callable[[], None]] = []
    for guest in running:
        state = _json(f"{where[guest.name]}/{SUPERVISOR_STATE}")
        updated = state.get("updated")
        if state.get("state") == "running" and isinstance(updated, int | float):
            guest.uptime_seconds = max(0.0, now - float(updated))
        guest.nics = [freebsd.nic_from_netstat(device, tap, taps[tap]) for device, tap in _ports(state) if tap in taps]

        def stats(guest: GuestSample = guest) -> None:
            try:
                counters = freebsd.vm_stats(host, guest.name)
                guest.rss_bytes = counters.get("Resident memory")
                guest.wired_bytes = counters.get("Wired memory")
            except HivectlError as error:
                errors.append(f"{guest.name}: {error}")
            if not racct[0] or guest.pid is None:
                return
            try:
                guest.cpu_seconds = float(freebsd.process_usage(host, guest.pid)["cputime"])
            except (HivectlError, KeyError) as error:
                racct[0] = False
                errors.append(f"{guest.name}: rctl: {error}")

        jobs.append(stats)
    _pooled(jobs)


def scrape(store: Store, host: Host, driver: str) -> Snapshot:
    """Collect one :class:`Snapshot` (``driver`` is ``qemu`` or ``bhyve``: it picks the sources)."""
    began = time.monotonic()
    errors: list[str] = []
    early = _EarlyQueries(store) if driver != "bhyve" else None
    samples, where = guests(store)
    cpus: int | None = None
    memory: int | None = None
    if driver == "bhyve":
        from hivectl.metrics import freebsd

        try:
            cpus, memory = freebsd.host_capacity(host)
        except HivectlError as error:
            errors.append(str(error))
        _freebsd(host, samples, where, errors)
        platform = "freebsd"
    else:
        from hivectl.metrics import linux

        cpus, memory = linux.host_capacity()
        assert early is not None
        _linux(samples, where, errors, early)
        platform = "linux"
    snapshot = Snapshot(platform, driver, time.time(), cpus, memory, samples, datastores(store), errors=errors)
    snapshot.duration = time.monotonic() - began
    return snapshot

