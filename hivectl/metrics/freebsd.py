"""FreeBSD sources: ``bhyvectl --get-stats`` and ``rctl -u`` per running guest, one ``netstat`` for all taps.

- ``bhyvectl --vm=NAME --get-stats`` (bhyvectl(8), usr.sbin/bhyvectl/bhyvectl.c): a ``vcpuN stats:`` line,
  then one ``%-40s\\t%ld`` line per vmm counter; ``Resident memory`` and ``Wired memory`` are the VM's
  memory in bytes (vm-bhyve's ``vm info`` reads the resident size the same way);
- ``rctl -u process:PID`` (rctl(8)): ``resource=amount`` lines; ``cputime`` is the bhyve process's CPU
  time in seconds. It needs RACCT in the kernel (``kern.racct.enable=1`` at boot); without it rctl fails
  and the CPU series are left out;
- ``netstat -i -b -d -n -W -f link`` (netstat(1), usr.bin/netstat/if.c): one line per interface with
  ``Ipkts Ierrs Idrop Ibytes Opkts Oerrs Obytes Coll Drop`` as its last nine columns (the address column
  is empty for an interface without a link address, so the counters are read from the right);
- host: ``sysctl -n hw.ncpu hw.physmem`` (sysctl(8)).

bhyve has no per-disk counters outside the guest, so disk series exist on FreeBSD only when a future
source is added (docs/metrics.md says so).
"""

from __future__ import annotations

from hivectl.errors import HivectlError
from hivectl.host.base import Host
from hivectl.metrics.sample import NicSample

NETSTAT = ["netstat", "-i", "-b", "-d", "-n", "-W", "-f", "link"]
NETSTAT_COLUMNS = ("Ipkts", "Ierrs", "Idrop", "Ibytes", "Opkts", "Oerrs", "Obytes", "Coll", "Drop")


class SourceError(HivectlError):
    """A FreeBSD tool's output was not what its manual page describes (the message quotes the line)."""


def parse_get_stats(text: str) -> dict[str, int]:
    """``bhyvectl --get-stats`` output as {counter description: value}."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip() or (line.startswith("vcpu") and line.rstrip().endswith("stats:")):
            continue
        name, tab, value = line.rpartition("\t")
        if not tab or not value.strip().lstrip("-").isdigit():
            raise SourceError(f"bhyvectl --get-stats: unexpected line {line!r}")
        counters[name.strip()] = int(value)
    return counters


def parse_rctl_usage(text: str) -> dict[str, int]:
    """``rctl -u`` output (``resource=amount`` per line) as a dict."""
    usage: dict[str, int] = {}
    for line in text.splitlines():
        name, eq, value = line.strip().partition("=")
        if not line.strip():
            continue
        if not eq or not value.isdigit():
            raise SourceError(f"rctl -u: unexpected line {line!r}")
        usage[name] = int(value)
    return usage


def parse_netstat(text: str) -> dict[str, dict[str, int]]:
    """``netstat -i -b -d -n -W -f link`` as {interface: {column: value}}."""
    lines = text.splitlines()
    if not lines or lines[0].split()[:1] != ["Name"] or tuple(lines[0].split()[-9:]) != NETSTAT_COLUMNS:
        raise SourceError(f"netstat: unexpected header {lines[0] if lines else ''!r}")
    found: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        numbers = words[-9:]
        if len(words) < 12 or not all(w.isdigit() for w in numbers):
            raise SourceError(f"netstat: unexpected line {line!r}")
        name = words[0].rstrip("*")  # a trailing '*' marks an interface that is down
        found[name] = dict(zip(NETSTAT_COLUMNS, map(int, numbers), strict=True))
    return found


def nic_from_netstat(device: str, interface: str, row: dict[str, int]) -> NicSample:
    """The guest's view of its tap: what the tap received (Ipkts) is what the guest transmitted."""
    return NicSample(device, interface, receive_bytes=row["Obytes"], receive_packets=row["Opkts"],
                     receive_drop=row["Drop"], receive_errs=row["Oerrs"], transmit_bytes=row["Ibytes"],
                     transmit_packets=row["Ipkts"], transmit_drop=row["Idrop"], transmit_errs=row["Ierrs"])


def vm_stats(host: Host, name: str) -> dict[str, int]:
    result = host.run(["bhyvectl", f"--vm={name}", "--get-stats"], timeout=5)
    return parse_get_stats(result.stdout)


def process_usage(host: Host, pid: int) -> dict[str, int]:
    result = host.run(["rctl", "-u", f"process:{pid}"], timeout=5)
    return parse_rctl_usage(result.stdout)


def interfaces(host: Host) -> dict[str, dict[str, int]]:
    return parse_netstat(host.run(NETSTAT, timeout=5).stdout)


def host_capacity(host: Host) -> tuple[int | None, int | None]:
    words = host.run(["sysctl", "-n", "hw.ncpu", "hw.physmem"], timeout=5).stdout.split()
    if len(words) != 2 or not all(w.isdigit() for w in words):
        raise SourceError(f"sysctl -n hw.ncpu hw.physmem: unexpected output {' '.join(words)!r}")
    return int(words[0]), int(words[1])
