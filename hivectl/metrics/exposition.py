"""A :class:`~hivectl.metrics.sample.Snapshot` as Prometheus text, through ``prometheus_client``.

Names follow the Prometheus conventions (base units, ``_total`` on counters, snake_case; ``promtool check
metrics`` passes them) and mirror Incus's instance metrics (lxc/incus ``doc/reference/provided_metrics.md``)
where a metric means the same, with ``hivectl_guest_`` for ``incus_`` and a ``guest`` label for Incus's
``name``: ``hivectl_guest_disk_read_bytes_total{guest,device}`` is ``incus_disk_read_bytes_total{name,device}``.
Where Incus breaks the conventions (``incus_memory_RSS_bytes`` is camel case, ``incus_cpu_effective_total``
is a gauge named like a counter) the conventional name is used; docs/metrics.md has the mapping.

The text is written by :func:`write`, not by ``prometheus_client``'s ``generate_latest``: at 500 guests the
library's serialisation alone cost most of a scrape's 250 ms budget (benchmarks/README.md, "metrics").
``prometheus_client`` (the optional ``metrics`` extra, imported only inside :func:`render` and
:func:`client_families`) remains the reference: tests/metrics checks that both give the same families and
samples, as its own parser reads them, and that promtool accepts both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from hivectl.metrics.sample import GuestSample, Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CACHE_SECONDS = 5.0

# (name without _total, help, kind, value of a guest or None) for the one-value-per-guest series.
GUEST_SERIES: list[tuple[str, str, str, Callable[[GuestSample], float | None]]] = [
    ("hivectl_guest_running", "1 if the guest's hypervisor runs, else 0", "gauge",
     lambda g: 1.0 if g.running else 0.0),
    ("hivectl_guest_vcpus", "Virtual CPUs the guest is configured with (Incus: incus_cpu_effective_total)",
     "gauge", lambda g: g.vcpus),
    ("hivectl_guest_memory_size_bytes", "Memory the guest is configured with (Incus: incus_memory_MemTotal_bytes)",
     "gauge", lambda g: g.memory_bytes),
    ("hivectl_guest_memory_rss_bytes", "Resident memory of the guest (Incus: incus_memory_RSS_bytes)", "gauge",
     lambda g: g.rss_bytes),
    ("hivectl_guest_memory_wired_bytes", "Wired guest memory (FreeBSD, bhyve -S)", "gauge",
     lambda g: g.wired_bytes),
    ("hivectl_guest_cpu_seconds", "CPU time used by the guest's hypervisor process (Incus: incus_cpu_seconds_total)",
     "counter", lambda g: g.cpu_seconds),
    ("hivectl_guest_uptime_seconds", "Seconds since the guest's hypervisor started (this boot)", "gauge",
     lambda g: g.uptime_seconds),
    ("hivectl_guest_restarts", "Times the supervisor booted the guest again after it exited", "counter",
     lambda g: float(g.restarts)),
]

DISK_SERIES = [
    ("hivectl_guest_disk_read_bytes", "Bytes read from a guest disk (Incus: incus_disk_read_bytes_total)",
     "read_bytes"),
    ("hivectl_guest_disk_reads_completed", "Reads completed on a guest disk (Incus: incus_disk_reads_completed_total)",
     "reads"),
    ("hivectl_guest_disk_written_bytes", "Bytes written to a guest disk (Incus: incus_disk_written_bytes_total)",
     "written_bytes"),
    ("hivectl_guest_disk_writes_completed",
     "Writes completed on a guest disk (Incus: incus_disk_writes_completed_total)", "writes"),
]

NIC_SERIES = [(f"hivectl_guest_network_{way}_{what}",
               f"{text} by a guest NIC (Incus: incus_network_{way}_{what}_total)", f"{way}_{what}")
              for way, verb in (("receive", "received"), ("transmit", "transmitted"))
              for what, text in (("bytes", f"Bytes {verb}"), ("packets", f"Packets {verb}"),
                                 ("drop", f"Packets dropped when {verb}"), ("errs", f"Errors when {verb}"))]


class Family:
    """One metric family as plain values: name (a counter's without ``_total``), help, ``gauge`` or
    ``counter``, label names, and (label values, value) samples."""

    __slots__ = ("help", "kind", "labels", "name", "samples")

    def __init__(self, name: str, help: str, kind: str = "gauge", labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help
        self.kind = kind
        self.labels = labels
        self.samples: list[tuple[tuple[str, ...], float]] = []

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.samples.append((values, value))


def families(snapshot: Snapshot) -> list[Family]:
    """The metric families of one snapshot; every series of docs/metrics.md, empty ones included."""
    found = []
    state = Family("hivectl_guest_state", "1 for the guest's state as hivectl list shows it", "gauge",
                   ("guest", "datastore", "state"))
    for guest in snapshot.guests:
        state.add((guest.name, guest.datastore, guest.state.lower()), 1.0)
    found.append(state)
    for name, text, kind, value in GUEST_SERIES:
        metric = Family(name, text, kind, ("guest",))
        for guest in snapshot.guests:
            got = value(guest)
            if got is not None:
                metric.add((guest.name,), got)
        found.append(metric)
    last = Family("hivectl_guest_last_exit_timestamp_seconds",
                  "When the guest's hypervisor last exited, with the reason and exit status", "gauge",
                  ("guest", "reason", "status"))
    for guest in snapshot.guests:
        if guest.last_exit is not None:
            status = "unknown" if guest.last_exit.status is None else str(guest.last_exit.status)
            last.add((guest.name, guest.last_exit.reason, status), guest.last_exit.time)
    found.append(last)
    for name, text, attr in DISK_SERIES:
        metric = Family(name, text, "counter", ("guest", "device"))
        for guest in snapshot.guests:
            for disk in guest.disks:
                metric.add((guest.name, disk.device), getattr(disk, attr))
        found.append(metric)
    for name, text, attr in NIC_SERIES:
        metric = Family(name, text, "counter", ("guest", "device", "interface"))
        for guest in snapshot.guests:
            for nic in guest.nics:
                metric.add((guest.name, nic.device, nic.interface), getattr(nic, attr))
        found.append(metric)
    host = [("hivectl_host_cpus", "CPUs of the host", snapshot.host_cpus),
            ("hivectl_host_memory_bytes", "Physical memory of the host", snapshot.host_memory_bytes)]
    for name, text, number in host:
        gauge = Family(name, text)
        if number is not None:
            gauge.add((), number)
        found.append(gauge)
    stores = (("hivectl_datastore_size_bytes", "Size of the file system under a datastore", "size_bytes"),
              ("hivectl_datastore_avail_bytes", "Space left for unprivileged writers", "avail_bytes"),
              ("hivectl_datastore_free_bytes", "Free space of the file system", "free_bytes"))
    for name, text, attr in stores:
        gauge = Family(name, text, "gauge", ("datastore",))
        for store in snapshot.datastores:
            gauge.add((store.name,), getattr(store, attr))
        found.append(gauge)
    scrape = [("hivectl_scrape_duration_seconds", "Seconds the last collection took", snapshot.duration),
              ("hivectl_scrape_errors", "Sources that failed in the last collection", float(len(snapshot.errors))),
              ("hivectl_scrape_timestamp_seconds", "When the last collection was made", snapshot.time)]
    for name, text, seconds in scrape:
        gauge = Family(name, text)
        gauge.add((), seconds)
        found.append(gauge)
    return found


def client_families(snapshot: Snapshot) -> Iterator[Any]:
    """The same families as ``prometheus_client.core`` objects (for its registry and ``generate_latest``)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    for family in families(snapshot):
        cls = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
        metric = cls(family.name, family.help, labels=list(family.labels))
        for values, value in family.samples:
            metric.add_metric(list(values), float(value))
        yield metric


def _escape_label(value: str) -> str:
    if "\\" not in value and '"' not in value and "\n" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    """A sample value as the Go client writes it: whole numbers without a fraction (1, not 1.0)."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and -1e15 < value < 1e15:
        return str(int(value))
    return repr(value)


def write(snapshot: Snapshot) -> bytes:
    """The text exposition format (version 0.0.4) of ``snapshot``, written directly.

    The same families and samples as :func:`render` (tests/metrics/test_exposition.py compares the two
    parsed by prometheus_client's parser, and runs promtool on both), at a fraction of the cost:
    ``generate_latest`` validates and escapes every label of every sample, 0.16-0.2 s of CPU for the
    10,000 samples of 500 guests, most of the 250 ms a scrape may take (benchmarks/README.md). The
    families are the same :func:`families` values; only their serialisation is ours.
    """
    lines: list[str] = []
    add = lines.append
    # A guest's label set recurs in every family of its kind: each set is rendered once per scrape.
    rendered: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}
    for family in families(snapshot):
        name = family.name + ("_total" if family.kind == "counter" else "")
        add(f"# HELP {name} {family.help.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}")
        add(f"# TYPE {name} {family.kind}")
        keys = family.labels
        if not keys:
            lines.extend(f"{name} {_number(value)}" for _, value in family.samples)
            continue
        sets = rendered.setdefault(keys, {})
        for values, value in family.samples:
            labels = sets.get(values)
            if labels is None:
                labels = sets[values] = name_labels(keys, values)
            add(f"{name}{labels} {_number(value)}")
    add("")
    return "\n".join(lines).encode()


def name_labels(keys: tuple[str, ...], values: tuple[str, ...]) -> str:
    """``{k1="v1",k2="v2"}`` with the values escaped as the text format asks (backslash, quote, newline)."""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in zip(keys, values, strict=True)) + "}"


def render(snapshot: Snapshot) -> bytes:
    """Prometheus text exposition format (version 0.0.4) of ``snapshot`` by ``prometheus_client``'s own
    ``generate_latest``: the reference :func:`write` is checked against."""
    from prometheus_client import CollectorRegistry, generate_latest

    class _Collector:
        def collect(self) -> Iterator[Any]:
            return client_families(snapshot)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    text: bytes = generate_latest(registry)
    return text


class ScrapeCache:
    """The last rendered scrape, reused for ``seconds``: several scrapers (two Prometheus servers, a
    dashboard, ``curl``) then cost one collection. One collection runs at a time; a caller arriving while
    it runs waits for it and gets its result."""

    def __init__(self, collect: Callable[[], Snapshot], seconds: float = CACHE_SECONDS) -> None:
        self.collect = collect
        self.seconds = seconds
        self._lock = threading.Lock()
        self._made = -float("inf")
        self._text = b""
        self.collections = 0  # how many times the sources were read

    def get(self) -> bytes:
        with self._lock:
            if time.monotonic() - self._made >= self.seconds:
                self._text = write(self.collect())
                self._made = time.monotonic()
                self.collections += 1
            return self._text


def text(snapshot: Snapshot) -> bytes:
    """What ``hivectl metrics`` prints and the daemon serves: :func:`write` (needs no ``prometheus_client``)."""
    return write(snapshot)
