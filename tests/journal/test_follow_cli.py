"""``hivectl events --follow`` as a real process: killed mid-stream (SIGKILL), restarted with ``--since``
the last number it printed, it misses nothing of 1,000 events written meanwhile by other processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

from hivectl.journal.events import emit
from hivectl.journal.log import Journal
from tests.cli_helpers import HIVECTL

EVENTS = 1_000


def test_a_follower_killed_and_restarted_with_since_loses_nothing(vmdir: Path) -> None:
    config = str(vmdir / ".config")
    start = Journal(str(vmdir / ".config" / "events.jsonl")).last_seq()

    def write() -> None:
        for i in range(EVENTS):
            emit(config, "config-changed", "/guests/follow", {"i": i})

    writer = threading.Thread(target=write)
    writer.start()
    got: list[dict] = []
    since, kills = start, 0
    try:
        while len(got) < EVENTS:
            follower = subprocess.Popen([*HIVECTL, "events", "--follow", "--json", "--since", str(since)],
                                        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
            assert follower.stdout is not None
            for _ in range(170):
                line = follower.stdout.readline()
                assert line, f"the follower ended: {follower.wait()}"
                got.append(json.loads(line))
                if len(got) == EVENTS:
                    break
            follower.send_signal(signal.SIGKILL)
            follower.wait()
            kills += 1
            since = got[-1]["seq"]
    finally:
        writer.join(120)
    assert kills >= 5
    assert [e["seq"] for e in got] == list(range(start + 1, start + EVENTS + 1))
    assert [e["details"]["i"] for e in got] == list(range(EVENTS)), "each event once, in order"
