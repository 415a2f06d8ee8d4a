"""``snapshot prune`` and ``retention explain`` on the simulated FreeBSD host's ZFS: the plan destroys exactly
what the policy does not keep, protected and unreplicated snapshots survive, a dry run changes nothing,
and a directory datastore says in one line that snapshots need ZFS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli_helpers import hivectl
from tests.simhost import state
from tests.storage.zfsfixture import ZfsVm

DAY0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def snapshots_of(zfsvm: ZfsVm, dataset: str) -> list[str]:
    return sorted(n.split("@", 1)[1] for n in zfsvm.host.datasets() if n.startswith(f"{dataset}@"))


def daily_snapshots(zfsvm: ZfsVm, guest: str, days: int) -> list[str]:
    """``days`` snapshots taken through hivectl, then dated one a day from 2026-11-01 (the sim stamps
    its snapshots with the time they were taken; a month of cron runs is not waited for)."""
    names = [f"daily-{(DAY0 + timedelta(days=n)).strftime('%Y%m%d')}" for n in range(days)]
    for name in names:
        assert hivectl("snapshot", f"{guest}@{name}").status == 0
    with state.transaction(zfsvm.host.root) as data:
        for n, name in enumerate(names):
            for full, record in data["datasets"].items():
                if full.endswith(f"@{name}"):
                    record["creation"] = int((DAY0 + timedelta(days=n)).timestamp())
    return names


def test_prune_keeps_what_the_policy_keeps_and_destroys_the_rest(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    names = daily_snapshots(zfsvm, "web", 20)
    assert zfsvm.host.run(["zfs", "set", "hivectl:protected=on", f"zroot/vm/web@{names[0]}"]).returncode == 0
    assert zfsvm.host.run(["zfs", "set", "hivectl:replication=pending", f"zroot/vm/web@{names[1]}"]).returncode == 0
    before = zfsvm.datasets()

    dry = hivectl("snapshot", "prune", "--dry-run", "web", "--keep-last", "3", "--keep-weekly", "2")
    assert dry.status == 0, dry.err
    planned = [json.loads(line) for line in dry.out.splitlines()]
    assert zfsvm.datasets() == before, "a dry run destroyed something"
    # Nov 18-20 by keep-last; the weeks of Nov 16-22 (covered), then Sundays Nov 15 and Nov 8 by keep-weekly.
    kept = {names[0], names[1], "daily-20261118", "daily-20261119", "daily-20261120", "daily-20261115",
            "daily-20261108"}
    assert planned == [["zfs", "destroy", "-r", f"zroot/vm/web@{n}"] for n in reversed(names) if n not in kept]

    done = hivectl("snapshot", "prune", "--json", "web", "--policy", "keep-last=3,keep-weekly=2")
    assert done.status == 0, done.err
    decisions = {d["name"]: d for d in json.loads(done.out)}
    assert decisions[names[0]]["rule"] == "protected" and decisions[names[1]]["rule"] == "not replicated"
    assert decisions["daily-20261115"]["rule"] == "keep-weekly" and not decisions["daily-20261116"]["keep"]
    assert snapshots_of(zfsvm, "zroot/vm/web") == sorted(kept)
    assert snapshots_of(zfsvm, "zroot/vm/web/disk0") == sorted(kept), "the zvol's snapshots stayed"
    again = hivectl("snapshot", "prune", "--dry-run", "web", "--policy", "keep-last=3,keep-weekly=2")
    assert again.status == 0 and again.out == "", "a second prune would destroy more"


def test_explain_reads_the_guest_or_the_names_and_changes_nothing(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "db").status == 0
    daily_snapshots(zfsvm, "db", 10)
    before = zfsvm.datasets()
    shown = hivectl("retention", "explain", "--keep-daily", "2", "--guest", "db")
    assert shown.status == 0, shown.err
    rows = [line.split() for line in shown.out.splitlines()]
    assert rows[0] == ["SNAPSHOT", "TIME", "DECISION", "RULE"]
    assert [(r[0], r[3], r[4]) for r in rows[1:4]] == [("daily-20261110", "keep", "keep-daily"),
                                                       ("daily-20261109", "keep", "keep-daily"),
                                                       ("daily-20261108", "remove", "-")]
    assert zfsvm.datasets() == before
    named = hivectl("retention", "explain", "--json", "--policy", "keep-monthly=3", "backup-20261203",
                    "backup-20261115", "backup-20261101", "backup-20261030", "backup-20260930")
    assert named.status == 0, named.err
    assert [(d["name"], d["rule"]) for d in json.loads(named.out)] == [
        ("backup-20261203", "keep-monthly"), ("backup-20261115", "keep-monthly"), ("backup-20261101", None),
        ("backup-20261030", "keep-monthly"), ("backup-20260930", None)]


def test_bad_input_is_one_line_naming_it(zfsvm: ZfsVm) -> None:
    assert hivectl("create", "-t", "freebsd-zvol", "-s", "1G", "web").status == 0
    cases = [
        (["snapshot", "prune", "web"], "at least one --keep-"),
        (["snapshot", "prune", "web", "--keep-daily", "0"], "--keep-daily='0'"),
        (["snapshot", "prune", "web", "--keep-daily", "2", "--policy", "keep-last=1"], "cannot be mixed"),
        (["snapshot", "web", "--keep-daily", "2"], "belong to 'snapshot prune"),
        (["retention", "explain", "--keep-daily", "2", "nodate"], "SNAPSHOT='nodate': no date"),
        (["retention", "explain", "--policy", "keep-daily=2,keep-fortnightly=1", "x-20260101"], "keep-fortnightly"),
    ]
    for argv, words in cases:
        result = hivectl(*argv)
        assert result.status != 0 and words in result.err and len(result.err.strip().splitlines()) == 1, \
            (argv, result.err)


def test_a_directory_datastore_says_pruning_needs_zfs(vmdir: Path) -> None:
    assert hivectl("create", "-s", "1M", "web").status == 0
    result = hivectl("snapshot", "prune", "web", "--keep-daily", "7")
    assert result.status == 1 and "needs a ZFS datastore" in result.err, result.err
