"""The exposition: every series of a fully populated snapshot passes ``promtool check metrics``, reads back
with the values it was given, is documented in docs/metrics.md; and the scrape cache."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from hivectl.metrics import exposition
from hivectl.metrics.sample import DatastoreSample, DiskSample, GuestSample, LastExit, NicSample, Snapshot
from tests.metrics.promtext import promtool_check, samples, value

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def full_snapshot() -> Snapshot:
    """A snapshot in which every series has a value, with label values that need escaping."""
    web = GuestSample("web", "default", "Running", 2, 2 << 30, pid=4242, rss_bytes=700 << 20, wired_bytes=0,
                      cpu_seconds=12.5, uptime_seconds=3600.0, restarts=3,
                      last_exit=LastExit("reboot", 0, 1_700_000_000.0),
                      disks=[DiskSample("disk0", 1000, 10, 2000, 20), DiskSample("disk1", 1, 1, 0, 0)],
                      nics=[NicSample("network0", "tap0", 1, 2, 3, 4, 5, 6, 7, 8)])
    odd = GuestSample('db-"1"', "ssd", "Stopped", None, None, last_exit=LastExit("poweroff", None, 1.6e9))
    return Snapshot("linux", "qemu", time.time(), 4, 16 << 30, [web, odd],
                    [DatastoreSample("default", "/vm", 100 << 30, 40 << 30, 50 << 30)], duration=0.01,
                    errors=["one source failed"])


def test_promtool_accepts_every_series() -> None:
    text = exposition.write(full_snapshot()).decode()
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr
    got = samples(text)
    assert value(got, "hivectl_guest_cpu_seconds_total", guest="web") == 12.5
    assert value(got, "hivectl_guest_disk_written_bytes_total", guest="web", device="disk0") == 2000
    assert value(got, "hivectl_guest_network_transmit_errs_total", guest="web", device="network0") == 8
    assert value(got, "hivectl_guest_state", guest='db-"1"', state="stopped") == 1
    assert value(got, "hivectl_guest_vcpus", guest='db-"1"') is None, "unknown stays out, not 0"
    assert value(got, "hivectl_guest_last_exit_timestamp_seconds", guest="web", reason="reboot") == 1.7e9
    assert value(got, "hivectl_guest_last_exit_timestamp_seconds", guest='db-"1"', status="unknown") == 1.6e9
    assert value(got, "hivectl_scrape_errors") == 1


def test_the_fast_writer_says_what_prometheus_client_says() -> None:
    """``write`` (the daemon's and the command's) and ``generate_latest`` (``render``) give the same families,
    help texts, types, samples and values once parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    snapshot = full_snapshot()

    def parsed(text: bytes) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
        return [(f.name, f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
                for f in text_string_to_metric_families(text.decode())]

    ours, theirs = parsed(exposition.write(snapshot)), parsed(exposition.render(snapshot))
    assert ours == theirs
    assert sum(len(f[3]) for f in ours) > 30
    assert promtool_check(exposition.render(snapshot).decode()).returncode == 0


def test_promtool_would_refuse_a_broken_name() -> None:
    """The check above can fail: promtool refuses what the exposition avoids (a counter without _total)."""
    bad = "# HELP hivectl_x_bytes x\n# TYPE hivectl_x_bytes counter\nhivectl_x_bytes 1\n"
    assert promtool_check(bad).returncode != 0


def test_every_metric_is_documented() -> None:
    names = {name for name, _ in samples(exposition.write(full_snapshot()).decode())}
    documented = set(re.findall(r"^\| `(hivectl_[a-z_]+)`", DOCS.read_text(), re.MULTILINE))
    assert names - documented == set(), "metrics missing from docs/metrics.md"
    assert documented - names == set(), "docs/metrics.md lists metrics the exposition does not have"


def test_the_cache_collects_once_for_many_scrapers() -> None:
    calls = []

    def collect() -> Snapshot:
        calls.append(time.monotonic())
        time.sleep(0.2)  # a slow collection: concurrent scrapers arrive while it runs
        return full_snapshot()

    cache = exposition.ScrapeCache(collect, seconds=0.5)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get())) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(results)) == 1 and len(results) == 5
    cache.get()
    assert len(calls) == 1, "within the cache time: no new collection"
    time.sleep(0.5)
    cache.get()
    assert len(calls) == 2, "after it: a new one"
