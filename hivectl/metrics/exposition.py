"""A :class:`~hivectl.metrics.sample.Snapshot` as Prometheus text, through ``prometheus_client``.

Names follow the Prometheus conventions (base units, ``_total`` on counters, snake_case; ``promtool check
metrics`` passes them) and mirror Incus's instance metrics (lxc/incus ``doc/reference/provided_metrics.md``)
where a metric means the same, with ``hivectl_guest_`` for ``incus_`` and a ``guest`` label for Incus's
``name``: ``hivectl_guest_disk_read_bytes_total{guest,device}`` is ``incus_disk_read_bytes_total{name,device}``.
Where Incus breaks the conventions (``incus_memory_RSS_bytes`` is camel case, ``incus_cpu_effective_total``
is a gauge named like a counter) the conventional name is used; docs/metrics.md has the mapping.

``prometheus_client`` is the optional ``metrics`` extra: imported here only, when a scrape is rendered.
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


def families(snapshot: Snapshot) -> Iterator[Any]:
    """The metric families of one snapshot (``prometheus_client.core`` objects)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    def family(name: str, text: str, kind: str, labels: list[str]) -> Any:
        cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        return cls(name, text, labels=labels)

    state = GaugeMetricFamily("hivectl_guest_state", "1 for the guest's state as hivectl list shows it",
                              labels=["guest", "datastore", "state"])
    for guest in snapshot.guests:
        state.add_metric([guest.name, guest.datastore, guest.state.lower()], 1.0)
    yield state
    for name, text, kind, value in GUEST_SERIES:
        metric = family(name, text, kind, ["guest"])
        for guest in snapshot.guests:
            got = value(guest)
            if got is not None:
                metric.add_metric([guest.name], float(got))
        yield metric
    last = GaugeMetricFamily("hivectl_guest_last_exit_timestamp_seconds",
                             "When the guest's hypervisor last exited, with the reason and exit status",
                             labels=["guest", "reason", "status"])
    for guest in snapshot.guests:
        if guest.last_exit is not None:
            last.add_metric([guest.name, guest.last_exit.reason, str(guest.last_exit.status)], guest.last_exit.time)
    yield last
    for name, text, attr in DISK_SERIES:
        metric = CounterMetricFamily(name, text, labels=["guest", "device"])
        for guest in snapshot.guests:
            for disk in guest.disks:
                metric.add_metric([guest.name, disk.device], float(getattr(disk, attr)))
        yield metric
    for name, text, attr in NIC_SERIES:
        metric = CounterMetricFamily(name, text, labels=["guest", "device", "interface"])
        for guest in snapshot.guests:
            for nic in guest.nics:
                metric.add_metric([guest.name, nic.device, nic.interface], float(getattr(nic, attr)))
        yield metric
    host = [("hivectl_host_cpus", "CPUs of the host", snapshot.host_cpus),
            ("hivectl_host_memory_bytes", "Physical memory of the host", snapshot.host_memory_bytes)]
    for name, text, number in host:
        gauge = GaugeMetricFamily(name, text)
        if number is not None:
            gauge.add_metric([], float(number))
        yield gauge
    stores = (("hivectl_datastore_size_bytes", "Size of the file system under a datastore", "size_bytes"),
              ("hivectl_datastore_avail_bytes", "Space left for unprivileged writers", "avail_bytes"),
              ("hivectl_datastore_free_bytes", "Free space of the file system", "free_bytes"))
    for name, text, attr in stores:
        gauge = GaugeMetricFamily(name, text, labels=["datastore"])
        for store in snapshot.datastores:
            gauge.add_metric([store.name], float(getattr(store, attr)))
        yield gauge
    scrape = [("hivectl_scrape_duration_seconds", "Seconds the last collection took", snapshot.duration),
              ("hivectl_scrape_errors", "Sources that failed in the last collection", float(len(snapshot.errors))),
              ("hivectl_scrape_timestamp_seconds", "When the last collection was made", snapshot.time)]
    for name, text, seconds in scrape:
        yield GaugeMetricFamily(name, text, value=seconds)


def render(snapshot: Snapshot) -> bytes:
    """Prometheus text exposition format (version 0.0.4) of ``snapshot``."""
    from prometheus_client import CollectorRegistry, generate_latest

    class _Collector:
        def collect(self) -> Iterator[Any]:
            return families(snapshot)

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
                self._text = render(self.collect())
                self._made = time.monotonic()
                self.collections += 1
            return self._text


def available() -> bool:
    """Whether ``prometheus_client`` can be imported. bin/hivectl starts Python without ``site`` and, when it
    finds hivectl in its checkout, without site-packages on the path (README.md): an installed extra is
    then looked for there, the way the launcher itself falls back to it (no ``.pth`` file is run)."""
    import sys

    try:
        import prometheus_client
    except ImportError:
        import site

        missing = [d for d in site.getsitepackages() if d not in sys.path]
        if not missing:
            return False
        sys.path.extend(missing)
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            return False
    return True


def text(snapshot: Snapshot) -> bytes:
    """:func:`render`, or a one-line error naming the missing extra when ``prometheus_client`` is absent."""
    if not available():
        from hivectl.errors import HivectlError

        raise HivectlError("metrics need the prometheus_client package: pip install 'hivectl[metrics]'")
    return render(snapshot)
