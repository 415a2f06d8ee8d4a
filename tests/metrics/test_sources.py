"""The platform sources: the FreeBSD tools' output (from the simulated host's stand-ins, which follow the
manual pages) parsed strictly; Linux's /proc files read from this very process."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hivectl.host.local import LocalHost
from hivectl.metrics import blockstats, freebsd, linux
from hivectl.metrics.sample import DiskSample


def test_netstat_stand_in_output_is_parsed(simhost: Any) -> None:
    found = freebsd.interfaces(LocalHost())
    assert set(found) >= {"lo0", "em0"}
    assert set(found["em0"]) == set(freebsd.NETSTAT_COLUMNS)


def test_netstat_refuses_what_it_does_not_simulate(simhost: Any) -> None:
    done = subprocess.run(["netstat", "-r"], capture_output=True, text=True, check=False)
    assert done.returncode == 64 and "not simulated" in done.stderr


def test_parsers_refuse_unexpected_output() -> None:
    with pytest.raises(freebsd.SourceError, match="unexpected line"):
        freebsd.parse_get_stats("vcpu0 stats:\nvcpu total runtime\tlots\n")
    with pytest.raises(freebsd.SourceError, match="unexpected header"):
        freebsd.parse_netstat("Name Mtu Network Address Ipkts Ierrs Opkts Oerrs Coll\n")
    with pytest.raises(freebsd.SourceError, match="unexpected line"):
        freebsd.parse_rctl_usage("cputime=12\nmemoryuse\n")
    assert freebsd.parse_rctl_usage("cputime=12\nmemoryuse=4096\n") == {"cputime": 12, "memoryuse": 4096}
    stats = freebsd.parse_get_stats("vcpu0 stats:\n" + f"{'Resident memory':<40}\t8192\n")
    assert stats == {"Resident memory": 8192}


def test_netstat_down_interface_and_empty_address() -> None:
    header = "Name Mtu Network Address Ipkts Ierrs Idrop Ibytes Opkts Oerrs Obytes Coll Drop"
    text = f"{header}\ntap3* 1500 <Link#5> 1 2 3 4 5 6 7 8 9\n"
    assert freebsd.parse_netstat(text)["tap3"]["Obytes"] == 7


def test_proc_times_of_a_busy_process() -> None:
    """CPU seconds from /proc/PID/stat agree with what the kernel reports at the process's end (wait4)."""
    child = subprocess.Popen(["python3", "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        cpu, started = linux.process_times(child.pid)
        assert abs(started - time.time()) < 5
        rss = linux.resident_bytes(child.pid)
        assert rss is not None and rss > 1 << 20
    finally:
        child.kill()
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = -9
    total = usage.ru_utime + usage.ru_stime
    assert cpu > 0.05, cpu
    assert cpu <= total + 0.02, (cpu, total)


def test_proc_net_dev_has_this_namespace_loopback() -> None:
    found = linux.interfaces()
    assert "lo" in found and len(found["lo"]) == 16
    before = found["lo"][linux.RX_PACKETS]
    with open(os.devnull, "w") as sink:
        subprocess.run(["ping", "-c", "2", "-i", "0.2", "127.0.0.1"], stdout=sink, stderr=sink, check=True)
    assert linux.interfaces()["lo"][linux.RX_PACKETS] >= before + 4


def test_a_missing_process_is_an_os_error() -> None:
    pid = max(int(p) for p in os.listdir("/proc") if p.isdigit()) + 100000
    with pytest.raises(OSError):
        linux.process_times(pid)
    assert Path("/proc/self/stat").exists()


def _monitor(path: Path, answer: bytes | None) -> socket.socket:
    """A unix socket that greets like QEMU's monitor and then sends ``answer`` (None: stays silent)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
        if answer is not None:
            conn.recv(4096)
            conn.sendall(b'{"return": {}}\r\n' + answer)
        time.sleep(2)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_blockstats_of_several_monitors_at_once(tmp_path: Path) -> None:
    good = b'{"return": [{"device": "disk0", "stats": {"rd_bytes": 7, "rd_operations": 1, "wr_bytes": 9, ' \
           b'"wr_operations": 2}}, {"device": "", "stats": {}}], "id": "hivectl-metrics"}\r\n'
    refused = b'{"error": {"class": "GenericError", "desc": "no blockstats today"}, "id": "hivectl-metrics"}\r\n'
    servers = [_monitor(tmp_path / "a.sock", good), _monitor(tmp_path / "b.sock", refused),
               _monitor(tmp_path / "c.sock", None)]
    began = time.monotonic()
    found = blockstats.collect([(n, tmp_path / f"{n}.sock") for n in ("a", "b", "c", "d")], timeout=0.5)
    assert time.monotonic() - began < 1.5, "a silent monitor holds up no one beyond the timeout"
    assert found["a"] == [DiskSample("disk0", 7, 1, 9, 2)]
    assert found["b"] == "no blockstats today"
    assert isinstance(found["c"], str) and "did not answer" in found["c"]
    assert isinstance(found["d"], str) and "cannot reach" in found["d"]
    for server in servers:
        server.close()


def test_resident_memory_is_the_kernels_vmrss_and_a_zombie_has_none() -> None:
    """``resident_bytes`` reads /proc/PID/statm: the same count as VmRSS of /proc/PID/status."""
    # The child says when it has touched its 64 MiB; from then on it only waits on stdin. Its resident set
    # can still move by a page or two (the interpreter's own heap), so the kernel's VmRSS is read before
    # and after statm, and a reading between two equal VmRSS figures must equal them.
    child = subprocess.Popen(["python3", "-c", "import sys; b = bytearray(64 << 20); print('ready', flush=True); "
                              "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"

        def vmrss() -> int:
            status = Path(f"/proc/{child.pid}/status").read_text()
            return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))

        for _ in range(100):
            before = vmrss()
            resident = linux.resident_bytes(child.pid)
            if vmrss() == before:
                break
            time.sleep(0.05)
        assert before > 64 << 20
        assert resident == before
    finally:
        assert child.stdin is not None
        child.stdin.close()
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)  # exited, not yet reaped: a zombie
        assert linux.resident_bytes(child.pid) is None
        child.wait()


def test_monitors_are_asked_before_the_list_and_only_running_guests_answers_are_kept(tmp_path: Path) -> None:
    """collect._EarlyQueries: every guest directory with a monitor socket is asked while ``list`` reads the
    guests; the answers of guests that are not running are dropped, and a running guest whose socket
    appeared after the early round is asked afterwards."""
    from hivectl.host.local import LocalHost
    from hivectl.hostconf import HostSettings
    from hivectl.metrics.collect import _EarlyQueries
    from hivectl.model.layout import QMP_CONTROL_SOCKET
    from hivectl.store import Store

    vm_dir = tmp_path / "vm"
    (vm_dir / ".config").mkdir(parents=True)
    (vm_dir / ".config" / "system.conf").write_text("")
    answer = b'{"return": [{"device": "disk0", "stats": {"rd_bytes": 1, "rd_operations": 2, "wr_bytes": 3, ' \
             b'"wr_operations": 4}}], "id": "hivectl-metrics"}\r\n'
    for name in ("a", "b", "c"):
        (vm_dir / name).mkdir()
    servers = [_monitor(vm_dir / name / QMP_CONTROL_SOCKET, answer) for name in ("a", "b")]
    early = _EarlyQueries(Store(HostSettings(vm_dir=str(vm_dir)), make_host=LocalHost))
    assert sorted(early.monitors) == ["a", "b"]
    servers.append(_monitor(vm_dir / "c" / QMP_CONTROL_SOCKET, answer))  # c started meanwhile
    running = [(name, vm_dir / name / QMP_CONTROL_SOCKET) for name in ("a", "c")]  # b: not running after all
    found = early.result(running)
    assert found == {"a": [DiskSample("disk0", 1, 2, 3, 4)], "c": [DiskSample("disk0", 1, 2, 3, 4)]}
    assert early.answers["b"] == [DiskSample("disk0", 1, 2, 3, 4)]  # asked early, then dropped
    for server in servers:
        server.close()
