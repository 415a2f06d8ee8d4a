"""Linux sources: files under ``/proc`` and ``/sys`` (no process per guest) and QMP for disk counters.

- ``/proc/PID/stat`` (proc(5)): fields 14 and 15 are the user and system CPU time of all the QEMU
  process's threads in clock ticks (``SC_CLK_TCK``); field 22 its start time in ticks after boot;
- ``/proc/PID/statm``: field 2, the resident memory of the QEMU process in pages, guest RAM included
  (``VmRSS`` of ``/proc/PID/status`` in kB is the same count);
- ``/proc/net/dev`` (proc(5)): every interface's counters in one read, the same values as
  ``/sys/class/net/TAP/statistics/*`` but of the reader's own network namespace (``/proc/net`` is
  ``/proc/self/net``), whereas ``/sys`` shows the namespace it was mounted in; a tap receives what its
  guest transmits, so the directions are swapped here;
- QMP ``query-blockstats`` (QEMU's ``qapi/block-core.json``): ``rd_bytes``, ``rd_operations``,
  ``wr_bytes``, ``wr_operations`` per drive, over the guest's second monitor ``NAME/qmp-ctl.sock`` (the
  supervisor holds the first), all guests at once (``blockstats.py``);
- host: ``os.cpu_count()`` and ``MemTotal`` of ``/proc/meminfo``.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from hivectl.metrics.sample import NicSample

# /proc/net/dev's columns after "name:": receive bytes packets errs drop fifo frame compressed multicast,
# then transmit bytes packets errs drop fifo colls carrier compressed.
RX_BYTES, RX_PACKETS, RX_ERRS, RX_DROP, TX_BYTES, TX_PACKETS, TX_ERRS, TX_DROP = 0, 1, 2, 3, 8, 9, 10, 11


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@cache
def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


@cache
def boot_time() -> float:
    """The host's boot time in epoch seconds (``btime`` of ``/proc/stat``)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("/proc/stat has no btime line")


def _read(path: str) -> str:
    """A small /proc file with two system calls (``open()`` in text mode costs more than the read; a
    scrape reads two per running guest)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def process_times(pid: int) -> tuple[float, float]:
    """(CPU seconds, start time in epoch seconds) of ``pid``; OSError when it is gone."""
    text = _read(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = text[text.rindex(")") + 2:].split()
    ticks = clock_ticks()
    utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
    return (utime + stime) / ticks, boot_time() + start / ticks


def resident_bytes(pid: int) -> int | None:
    """Resident memory of ``pid``: the second field of ``/proc/PID/statm``, in pages (proc(5); the same
    count as ``VmRSS`` of ``/proc/PID/status``, a file twenty times as long to read and split)."""
    fields = _read(f"/proc/{pid}/statm").split()
    resident = int(fields[1]) if len(fields) > 1 else 0
    return resident * PAGE_SIZE if resident else None  # a zombie (or a kernel thread) has no memory left


def interfaces(path: str = "/proc/net/dev") -> dict[str, list[int]]:
    """Every interface's counters in one read: {name: the 16 numbers of its line}."""
    found: dict[str, list[int]] = {}
    for line in _read(path).splitlines()[2:]:
        name, colon, numbers = line.partition(":")
        words = numbers.split()
        if colon and len(words) == 16 and all(w.isdigit() for w in words):
            found[name.strip()] = [int(w) for w in words]
    return found


def nic_counters(device: str, interface: str, counters: list[int]) -> NicSample:
    """The guest's view of its tap: what the tap received is what the guest transmitted."""
    return NicSample(device, interface, receive_bytes=counters[TX_BYTES], receive_packets=counters[TX_PACKETS],
                     receive_drop=counters[TX_DROP], receive_errs=counters[TX_ERRS],
                     transmit_bytes=counters[RX_BYTES], transmit_packets=counters[RX_PACKETS],
                     transmit_drop=counters[RX_DROP], transmit_errs=counters[RX_ERRS])


def host_capacity() -> tuple[int | None, int | None]:
    """(CPUs, memory in bytes) of this host."""
    memory = None
    try:
        for line in _read("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    return os.cpu_count(), memory
