"""What one scrape found, as plain values: the collectors fill it, the exposition renders it.

Kept apart from both so that the collectors need no Prometheus library and the exposition no platform
knowledge. A value the platform cannot give is ``None`` and its series is left out of the output (a
missing series, not a misleading zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DiskSample:
    """Counters of one guest disk since its hypervisor started (QMP ``query-blockstats``)."""

    device: str  # diskN, as the guest's config numbers it
    read_bytes: int
    reads: int
    written_bytes: int
    writes: int


@dataclass
class NicSample:
    """Counters of one guest NIC, as the host's end of it (its tap) counts them.

    A tap's receive is what the guest sent, and the other way round; the values are given from the
    guest's point of view (``receive`` = into the guest), as Incus gives its instances' NIC counters.
    """

    device: str  # networkN
    interface: str  # the tap (tap0, vmnet3, ...)
    receive_bytes: int
    receive_packets: int
    receive_drop: int
    receive_errs: int
    transmit_bytes: int
    transmit_packets: int
    transmit_drop: int
    transmit_errs: int


@dataclass
class LastExit:
    """How the hypervisor's last run ended (the supervisor's ``NAME/hivectl.last``)."""

    reason: str  # the driver's outcome: poweroff, reboot, halt, fault, killed, error ...
    status: int | None  # None: an adopted hypervisor, not the supervisor's child (no exit status to read)
    time: float


@dataclass
class GuestSample:
    name: str
    datastore: str
    state: str  # list's state word: Running, Stopped, Locked, Suspended, Bootloader, Stopping
    vcpus: int | None
    memory_bytes: int | None  # the configured size
    pid: int | None = None
    rss_bytes: int | None = None  # resident memory of the guest (bhyve's VM) or of the QEMU process
    wired_bytes: int | None = None  # FreeBSD: wired guest memory (bhyve -S)
    cpu_seconds: float | None = None
    uptime_seconds: float | None = None
    restarts: int = 0
    last_exit: LastExit | None = None
    disks: list[DiskSample] = field(default_factory=list)
    nics: list[NicSample] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state in ("Running", "Bootloader", "Stopping")


@dataclass
class DatastoreSample:
    name: str
    path: str
    size_bytes: int
    avail_bytes: int  # what an unprivileged writer may still use
    free_bytes: int


@dataclass
class Snapshot:
    """Everything one scrape found."""

    platform: str
    driver: str
    time: float
    host_cpus: int | None
    host_memory_bytes: int | None
    guests: list[GuestSample]
    datastores: list[DatastoreSample]
    duration: float = 0.0  # seconds the collection took
    errors: list[str] = field(default_factory=list)  # sources that failed (one line each), counted
