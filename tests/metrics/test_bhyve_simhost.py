"""The bhyve path on the simulated FreeBSD host: ``hivectl metrics`` as a separate process reads the
stand-ins' ``bhyvectl --get-stats``, ``netstat -i`` and ``sysctl``, and the values are the host's."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, make_guest, taps, wait_for
from tests.metrics.promtext import promtool_check, samples, value


def scrape() -> str:
    result = hivectl("metrics")
    assert result.status == 0, result.err
    return result.out


def test_a_running_bhyve_guest_has_its_counters(host: Any) -> None:
    make_guest(host, "g1", memory="1G", cpu="2")
    make_guest(host, "idle")
    assert hivectl("start", "g1").status == 0
    wait_for(lambda: bhyve_pid(host, "g1"), what="bhyve running")
    first = samples(scrape())
    time.sleep(1.2)
    text = scrape()
    second = samples(text)
    assert promtool_check(text).returncode == 0, promtool_check(text).stdout

    assert value(second, "hivectl_guest_state", guest="g1", state="running") == 1
    assert value(second, "hivectl_guest_state", guest="idle", state="stopped") == 1
    assert value(second, "hivectl_guest_running", guest="idle") == 0
    assert value(second, "hivectl_guest_vcpus", guest="g1") == 2
    assert value(second, "hivectl_guest_memory_size_bytes", guest="g1") == 1 << 30
    # The stand-in's VM reports a quarter of its memory resident (tests/simhost/bhyvectl.py).
    assert value(second, "hivectl_guest_memory_rss_bytes", guest="g1") == (1 << 30) // 4
    assert value(second, "hivectl_guest_memory_rss_bytes", guest="idle") is None, "no counters when stopped"
    assert value(second, "hivectl_host_cpus") == int(host.state()["sysctl"]["hw.ncpu"])
    assert value(second, "hivectl_host_memory_bytes") == int(host.state()["sysctl"]["hw.physmem"])
    assert value(second, "hivectl_datastore_size_bytes", datastore="default")

    (tap,) = taps(host)
    for name in ("hivectl_guest_network_receive_bytes_total", "hivectl_guest_network_transmit_packets_total"):
        before = value(first, name, guest="g1", device="network0", interface=tap)
        after = value(second, name, guest="g1", device="network0", interface=tap)
        assert before is not None and after is not None and after > before, (name, before, after)
    up1 = value(first, "hivectl_guest_uptime_seconds", guest="g1")
    up2 = value(second, "hivectl_guest_uptime_seconds", guest="g1")
    assert up1 is not None and up2 is not None and up2 > up1

    # One netstat and one sysctl per scrape; one bhyvectl per running guest, none for the stopped one.
    commands = [json.loads(line) for line in (host.root / "commands.jsonl").read_text().splitlines()]
    assert sum(1 for c in commands if c[0] == "netstat") == 2
    stats = [c for c in commands if c[0] == "bhyvectl" and "--get-stats" in c]
    assert stats == [["bhyvectl", "--vm=g1", "--get-stats"]] * 2
    assert hivectl("stop", "--timeout", "10", "g1").status == 0


def test_a_reboot_counts_a_restart_and_the_last_exit(host: Any) -> None:
    make_guest(host, "g1")
    assert hivectl("start", "g1").status == 0
    first = wait_for(lambda: bhyve_pid(host, "g1"))
    assert value(scrape(), "hivectl_guest_restarts_total", guest="g1") == 0
    host.exit_guest("g1", 0)  # the guest reboots: bhyve exits 0, the supervisor boots it again
    wait_for(lambda: (p := bhyve_pid(host, "g1")) and p != first, what="second bhyve")
    text = scrape()
    assert value(text, "hivectl_guest_restarts_total", guest="g1") == 1
    assert value(text, "hivectl_guest_last_exit_timestamp_seconds", guest="g1", reason="reboot", status="0")
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    text = scrape()
    assert value(text, "hivectl_guest_last_exit_timestamp_seconds", guest="g1", reason="poweroff", status="1")
    assert value(text, "hivectl_guest_restarts_total", guest="g1") == 1, "a stop is not a restart"
