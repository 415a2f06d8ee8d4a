"""``/metrics`` of a real hivectld on the simulated FreeBSD host, over its unix socket: promtool accepts it,
it shows a guest the daemon started, and the scrape cache makes concurrent scrapers cost one collection."""

from __future__ import annotations

import json
import threading
import time

from tests.daemon.conftest import Daemon, shared  # noqa: F401 - the fixture
from tests.metrics.promtext import promtool_check, value


def test_metrics_of_a_running_guest(shared: Daemon) -> None:  # noqa: F811
    from tests.cli_helpers import hivectl

    assert hivectl("create", "-s", "1G", "mx1").status == 0
    assert hivectl("start", "mx1").status == 0
    try:
        reply = shared.get("/metrics")
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        check = promtool_check(reply.text)
        assert check.returncode == 0, check.stdout + check.stderr
        assert value(reply.text, "hivectl_guest_state", guest="mx1", state="running") == 1
        assert value(reply.text, "hivectl_guest_memory_rss_bytes", guest="mx1")

        # Five scrapers at once, then again within the cache time: one collection (one netstat) in all.
        commands = shared.simhost.root / "commands.jsonl"
        before = sum(1 for line in commands.read_text().splitlines() if json.loads(line)[0] == "netstat")
        time.sleep(5.1)  # the first scrape's cache has expired
        replies: list[str] = []
        threads = [threading.Thread(target=lambda: replies.append(shared.get("/metrics").text)) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = sum(1 for line in commands.read_text().splitlines() if json.loads(line)[0] == "netstat")
        assert len(replies) == 5 and len(set(replies)) == 1
        assert after == before + 1, "five concurrent scrapers, one collection"
    finally:
        assert hivectl("stop", "--timeout", "10", "mx1").status == 0
