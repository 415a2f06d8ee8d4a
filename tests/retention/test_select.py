"""The retention selection (hivectl/retention): Proxmox's worked example reproduced exactly, the rules the
Proxmox manuals state one by one, and properties over generated series (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hivectl.errors import ConfigError
from hivectl.retention import RULES, Item, Policy, parse_policy, select
from hivectl.retention.policy import policy_from_options


def at(text: str) -> float:
    """Epoch seconds of ``YYYY-MM-DD[ HH:MM]`` in UTC (every test counts periods in UTC)."""
    stamp = datetime.fromisoformat(text if " " in text else f"{text} 12:00").replace(tzinfo=UTC)
    return stamp.timestamp()


def daily(first: str, last: str, hour: int = 12) -> list[Item]:
    """One item a day at ``hour``:00 UTC from ``first`` to ``last``, named by its date."""
    day, end, items = date.fromisoformat(first), date.fromisoformat(last), []
    while day <= end:
        items.append(Item(day.isoformat(), at(f"{day.isoformat()} {hour:02}:00")))
        day += timedelta(days=1)
    return items


def kept(items: list[Item], policy: str) -> list[tuple[str, str]]:
    return [(d.item.name, d.rule) for d in select(items, parse_policy(policy), UTC) if d.keep]


def test_the_proxmox_ve_manual_example_daily_backups_kept_for_ten_years() -> None:
    """The Proxmox VE manual's "Backup Retention" example for daily backups: keep-last=3, keep-daily=13,
    keep-weekly=8, keep-monthly=11, keep-yearly=9 ("at least two weeks of daily, two months of weekly,
    a year of monthly backups, then nine more years"). Twelve years of backups at noon ending on
    Thursday 2026-12-03: exactly these 44 survive, each with the option the manual attributes it to."""
    result = kept(daily("2014-06-01", "2026-12-03"),
                  "keep-last=3,keep-daily=13,keep-weekly=8,keep-monthly=11,keep-yearly=9")
    expected = [(d, "keep-last") for d in ("2026-12-03", "2026-12-02", "2026-12-01")]
    expected += [(f"2026-11-{n:02}", "keep-daily") for n in range(30, 17, -1)]  # Nov 30 back to Nov 18
    # ISO weeks: Nov 30-Dec 6, Nov 23-29 and Nov 16-22 hold kept items; then the Sundays of 8 more weeks.
    expected += [(d, "keep-weekly") for d in ("2026-11-15", "2026-11-08", "2026-11-01", "2026-10-25",
                                               "2026-10-18", "2026-10-11", "2026-10-04", "2026-09-27")]
    # December to September hold kept items; then the last day of 11 more months.
    expected += [(d, "keep-monthly") for d in ("2026-08-31", "2026-07-31", "2026-06-30", "2026-05-31",
                                                "2026-04-30", "2026-03-31", "2026-02-28", "2026-01-31",
                                                "2025-12-31", "2025-11-30", "2025-10-31")]
    expected += [(f"{year}-12-31", "keep-yearly") for year in range(2024, 2015, -1)]
    assert result == expected
    assert len(result) == 44


def test_each_option_counts_only_periods_the_earlier_ones_left() -> None:
    """keep-last=2 then keep-daily=2: the two newest items share a day, which keep-daily then skips
    (it "only considers older backups"), so it keeps the two days before."""
    items = [Item("a", at("2026-12-03 10:00")), Item("b", at("2026-12-03 11:00")),
             Item("c", at("2026-12-02 09:00")), Item("d", at("2026-12-02 23:00")),
             Item("e", at("2026-12-01 08:00")), Item("f", at("2026-11-30 08:00"))]
    assert kept(items, "keep-last=2,keep-daily=2") == [("b", "keep-last"), ("a", "keep-last"),
                                                       ("d", "keep-daily"), ("e", "keep-daily")]


def test_periods_without_items_do_not_count() -> None:
    """keep-hourly=3 over items at 10:05, 10:40, 07:00 and 01:00: three hours that have an item, the
    latest of each (10:40, not 10:05), however far apart."""
    items = [Item("h1", at("2026-12-03 01:00")), Item("h7", at("2026-12-03 07:00")),
             Item("h10a", at("2026-12-03 10:05")), Item("h10b", at("2026-12-03 10:40"))]
    assert kept(items, "keep-hourly=3") == [("h10b", "keep-hourly"), ("h7", "keep-hourly"), ("h1", "keep-hourly")]


def test_weeks_are_iso_weeks_across_the_new_year() -> None:
    """2026-01-01 is a Thursday: Dec 29, 2025 to Jan 4, 2026 is one ISO week (2026-W01)."""
    items = daily("2025-12-24", "2026-01-03")
    assert kept(items, "keep-weekly=2") == [("2026-01-03", "keep-weekly"), ("2025-12-28", "keep-weekly")]


def test_an_item_passed_over_in_a_kept_week_is_not_taken_by_keep_monthly() -> None:
    """Proxmox marks the other items of a kept period as removed, so no later option considers them:
    keep-weekly=1 keeps Sunday 2026-02-01, whose week began on Monday January 26; January's newest item not
    in that week is the 25th, which keep-monthly keeps (not the 31st)."""
    assert kept(daily("2026-01-20", "2026-02-01"), "keep-weekly=1,keep-monthly=2") == [
        ("2026-02-01", "keep-weekly"), ("2026-01-25", "keep-monthly")]


def test_protected_and_unreplicated_items_are_kept_and_count_for_nothing() -> None:
    """keep-last=1 over a protected newest item: it is kept as protected, and keep-last still keeps the
    next one; an item not yet replicated is kept whatever the policy."""
    items = [Item("new", at("2026-12-03"), protected=True), Item("mid", at("2026-12-02")),
             Item("old", at("2026-12-01"), pending=True), Item("oldest", at("2026-11-30"))]
    decisions = select(items, parse_policy("keep-last=1"), UTC)
    assert [(d.item.name, d.keep, d.rule) for d in decisions] == [
        ("new", True, "protected"), ("mid", True, "keep-last"), ("old", True, "not replicated"),
        ("oldest", False, "")]


def test_no_option_keeps_everything() -> None:
    items = daily("2026-11-01", "2026-11-05")
    assert all(d.keep and d.rule == "keep-all" for d in select(items, Policy(), UTC))
    assert parse_policy("keep-all") == Policy()


def test_the_string_and_the_options_are_one_grammar() -> None:
    policy = parse_policy("keep-daily=7, keep-last=3")
    assert policy == policy_from_options({"last": "3", "daily": 7, "weekly": None})
    assert policy.text() == "keep-last=3,keep-daily=7"  # canonical: the order of application
    assert parse_policy(policy.text()) == policy


@pytest.mark.parametrize(("text", "words"), [
    ("keep-daily=0", "keep-daily"), ("keep-daily=-1", "keep-daily"), ("keep-daily=x", "keep-daily"),
    ("keep-fortnightly=2", "keep-fortnightly=2"), ("keep-daily=1,keep-daily=2", "given twice"),
    ("daily=7", "daily=7"), ("keep-all,keep-last=1", "keep-all"), ("keep-daily=٣", "keep-daily"),
])
def test_a_bad_policy_names_the_source_key_and_value(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, "/vm/.config/system.conf", "snapshot_keep")
    message = str(caught.value)
    assert message.startswith("/vm/.config/system.conf: snapshot_keep") and words in message, message


def test_a_bad_option_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"command line: --keep-weekly='0'"):
        policy_from_options({"weekly": "0"})


# -- properties --------------------------------------------------------------------------------------------
START = at("2024-01-01 00:00")
series = st.lists(st.tuples(st.integers(0, 3 * 366 * 24), st.booleans(), st.booleans()), max_size=120,
                  unique_by=lambda t: t[0])
policies = st.dictionaries(st.sampled_from(RULES), st.integers(1, 12), max_size=len(RULES))


def make(spec: list[tuple[int, bool, bool]]) -> list[Item]:
    return [Item(f"s{hour}", START + hour * 3600 + 59, protected=p and q, pending=p and not q)
            for hour, p, q in spec]


def period(item: Item, rule: str) -> object:
    moment = datetime.fromtimestamp(item.time, UTC)
    return {"last": item.name, "hourly": moment.strftime("%Y%m%d%H"), "daily": moment.date(),
            "weekly": moment.isocalendar()[:2], "monthly": (moment.year, moment.month), "yearly": moment.year}[rule]


@settings(max_examples=300, deadline=None)
@given(series, policies)
def test_what_every_selection_promises(spec: list[tuple[int, bool, bool]], counts: dict[str, int]) -> None:
    items = make(spec)
    decisions = select(items, Policy(counts), UTC)
    assert sorted(d.item.name for d in decisions) == sorted(i.name for i in items)  # each item once
    assert [d.item.time for d in decisions] == sorted((i.time for i in items), reverse=True)
    for d in decisions:
        assert d.keep == bool(d.rule)
        if d.item.protected or d.item.pending:  # never removed, kept for that reason alone
            assert d.keep and d.rule in ("protected", "not replicated", "keep-all")
    by_rule: dict[str, list[Item]] = {}
    for d in decisions:
        if d.rule.startswith("keep-") and d.rule != "keep-all":
            by_rule.setdefault(d.rule[5:], []).append(d.item)
    for rule, members in by_rule.items():
        assert len(members) <= counts[rule]
        assert len({period(i, rule) for i in members}) == len(members)  # one per period
    for rule, members in by_rule.items():  # no option keeps an item in a period an earlier one covers
        earlier = [i for r in RULES[:RULES.index(rule)] for i in by_rule.get(r, [])]
        assert not {period(i, rule) for i in members} & {period(i, rule) for i in earlier}
    ordinary = [i for i in items if not (i.protected or i.pending)]
    if counts and set(counts) == {"last"}:
        newest = sorted(ordinary, key=lambda i: i.time, reverse=True)[:counts["last"]]
        assert {d.item.name for d in decisions if d.rule == "keep-last"} == {i.name for i in newest}


@settings(max_examples=300, deadline=None)
@given(series, policies)
def test_pruning_what_was_kept_removes_nothing_more(spec: list[tuple[int, bool, bool]],
                                                    counts: dict[str, int]) -> None:
    """A second prune with the same policy right after the first keeps everything the first kept."""
    items = make(spec)
    survivors = [d.item for d in select(items, Policy(counts), UTC) if d.keep]
    assert all(d.keep for d in select(survivors, Policy(counts), UTC))
