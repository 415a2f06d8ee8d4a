"""A real QEMU guest (the tiny guest) works its disk and its NIC between two scrapes of ``hivectl metrics``,
and the counters move: disk bytes and operations from QMP, NIC bytes and packets from its tap, CPU time
and uptime from /proc. ``hivectl metrics`` runs as the administrator would, inside the test's network
namespace, where the guest's tap is."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import READY, Env, artifacts, e2e  # noqa: F401 - the fixtures
from tests.metrics.promtext import promtool_check, samples, value

GROWING = [
    ("hivectl_guest_disk_read_bytes_total", {"device": "disk0"}),
    ("hivectl_guest_disk_reads_completed_total", {"device": "disk0"}),
    ("hivectl_guest_disk_written_bytes_total", {"device": "disk0"}),
    ("hivectl_guest_disk_writes_completed_total", {"device": "disk0"}),
    ("hivectl_guest_network_receive_bytes_total", {"device": "network0"}),
    ("hivectl_guest_network_receive_packets_total", {"device": "network0"}),
    ("hivectl_guest_network_transmit_bytes_total", {"device": "network0"}),
    ("hivectl_guest_network_transmit_packets_total", {"device": "network0"}),
    ("hivectl_guest_cpu_seconds_total", {}),
    ("hivectl_guest_uptime_seconds", {}),
]


def test_counters_move_while_the_guest_works_its_disk_and_nic(e2e: Env) -> None:  # noqa: F811
    e2e.ok("create", "-t", "tiny-direct", "m1")
    e2e.ok("start", "m1")
    ready = e2e.wait_console("m1", READY)
    ip = ready.group(1).split("/")[0]
    first_text = e2e.ok("metrics").out
    first = samples(first_text)
    assert value(first, "hivectl_guest_state", guest="m1", state="running") == 1
    assert value(first, "hivectl_guest_memory_size_bytes", guest="m1") == 256 << 20
    rss = value(first, "hivectl_guest_memory_rss_bytes", guest="m1")
    assert rss is not None and rss > 64 << 20, "QEMU's resident memory holds the booted guest"

    work = ("dd if=/dev/vda of=/dev/null bs=64k count=256; dd if=/dev/urandom of=/dev/vda bs=64k count=64; "
            "sync; echo worked-$((6*7))\n")
    out = e2e.ok("console", "m1", input_text=work).out
    assert "worked-42" in out, out[-500:]
    ping = e2e.netns_run("ping", "-c", "5", "-i", "0.2", "-W", "3", ip)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    text = e2e.ok("metrics").out
    second = samples(text)
    check = promtool_check(text)
    assert check.returncode == 0, check.stdout + check.stderr
    for name, labels in GROWING:
        before, after = value(first, name, guest="m1", **labels), value(second, name, guest="m1", **labels)
        assert before is not None and after is not None and after > before, (name, before, after)
    read = value(second, "hivectl_guest_disk_read_bytes_total", guest="m1", device="disk0")
    written = value(second, "hivectl_guest_disk_written_bytes_total", guest="m1", device="disk0")
    assert read is not None and read >= 256 * 65536, "the guest read 16 MiB of its disk"
    assert written is not None and written >= 64 * 65536, "and wrote 4 MiB"
    received = value(second, "hivectl_guest_network_receive_packets_total", guest="m1", device="network0")
    assert received is not None and received >= value(first, "hivectl_guest_network_receive_packets_total",
                                                       guest="m1", device="network0") + 5, "five pings in"

    # --json: the same collection as plain data.
    data: Any = json.loads(e2e.ok("metrics", "--json").out)
    (guest,) = [g for g in data["guests"] if g["name"] == "m1"]
    assert guest["disks"][0]["device"] == "disk0" and guest["nics"][0]["device"] == "network0"
    e2e.ok("stop", "--timeout", "30", "m1")
    stopped = samples(e2e.ok("metrics").out)
    assert value(stopped, "hivectl_guest_running", guest="m1") == 0
    assert value(stopped, "hivectl_guest_disk_read_bytes_total", guest="m1", device="disk0") is None
    assert value(stopped, "hivectl_guest_last_exit_timestamp_seconds", guest="m1", reason="poweroff")
