"""Lifecycle events written by the supervisor on the simulated FreeBSD host: started, rebooted, crashed,
stopped, console-opened; and their order and sequence numbers as ``hivectl events`` shows them."""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.cli_helpers import hivectl
from tests.lifecycle_helpers import bhyve_pid, host, make_guest, wait_for  # noqa: F401  (host: fixture)


def guest_events(name: str, since: int = 0) -> list[dict[str, Any]]:
    out = hivectl("events", "--since", str(since), "--guest", name, "--json")
    assert out.status == 0, out.err
    return [json.loads(line) for line in out.out.splitlines()]


def test_start_reboot_crash_and_stop_are_events(host: Any) -> None:  # noqa: F811
    make_guest(host, on_fault="restart", fault_backoff="0")
    assert [e["type"] for e in guest_events("g1")] == ["created"]
    assert hivectl("start", "g1").status == 0
    first = wait_for(lambda: bhyve_pid(host, "g1"), what="bhyve running")
    wait_for(lambda: [e["type"] for e in guest_events("g1")][-1:] == ["started"], what="started event")
    host.exit_guest("g1", 0)  # the guest reboots itself: no command asked for it
    second = wait_for(lambda: (p := bhyve_pid(host, "g1")) and p != first and p, what="second bhyve")
    host.exit_guest("g1", 3)  # a triple fault: on_fault=restart boots it again
    third = wait_for(lambda: (p := bhyve_pid(host, "g1")) and p not in (first, second) and p, what="third bhyve")
    assert hivectl("stop", "--timeout", "10", "g1").status == 0
    wait_for(lambda: guest_events("g1")[-1]["type"] == "stopped", what="stopped event")
    seen = guest_events("g1")
    assert [e["type"] for e in seen] == ["created", "started", "rebooted", "started", "crashed", "started",
                                         "stopped"]
    assert [e["details"].get("pid") for e in seen if e["type"] == "started"] == [first, second, third]
    crashed = next(e for e in seen if e["type"] == "crashed")["details"]
    assert (crashed["status"], crashed["outcome"], crashed["again"]) == (3, "fault", True)
    assert all(b["seq"] > a["seq"] for a, b in itertools.pairwise(seen))
    assert all(e["target"] == "/guests/g1" and "uid" in e["who"] for e in seen)


def test_a_failed_start_is_one_event_written_once_the_guest_is_stopped_again(host: Any) -> None:  # noqa: F811
    """A start that fails inside the supervisor (its preflight: the simulated host's hw.vmm.maxcpu is 4, g1
    asks for 8) held the run lock for a moment, listed as Running: the event tells a watcher (the web page,
    ``events --follow``) that it is over, with the line the CLI printed, once the guest is Stopped again."""
    make_guest(host, cpu="8")
    failed = hivectl("start", "g1")
    assert failed.status != 0
    line = failed.err.strip().splitlines()[-1].removeprefix("hivectl: ")
    seen = guest_events("g1")
    assert [e["type"] for e in seen] == ["created", "start-failed"], (seen, failed.err)
    assert seen[-1]["details"]["error"] in line, (seen[-1], line)
    assert hivectl("list", "--json").json()[0]["state"] == "Stopped"
