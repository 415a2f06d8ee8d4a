"""What a policy keeps of a series: Proxmox's prune selection, decision by decision.

The order and the counting follow the Proxmox Backup Server's prune (the manual's "Pruning" and its
prune simulator): items newest first; for each option in :data:`~hivectl.retention.policy.RULES` order,
the periods (hour, day, ISO week, month, year in the given time zone; for ``keep-last`` each item is its
own period) that already hold an item kept by an earlier option are left out, then the newest item of
each further period is kept until N periods are kept, and the option stops there; the other items of a
period it kept are passed over for good (no later option considers them: with weeks that straddle two
months, ``keep-monthly`` then keeps the newest item of the month that is not in a kept week). Whatever
no option kept is removed, except protected and not yet replicated items, which are always kept and
neither count towards an option nor cover a period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo

from hivectl.retention.policy import RULES, Policy

PROTECTED = "protected"
PENDING = "not replicated"


class Item:
    """One member of a series: its name, its time (seconds since the epoch), whether it is protected
    and whether it still waits to be replicated."""

    __slots__ = ("name", "pending", "protected", "time")

    def __init__(self, name: str, time: float, protected: bool = False, pending: bool = False) -> None:
        self.name = name
        self.time = time
        self.protected = protected
        self.pending = pending

    def __repr__(self) -> str:
        return f"Item({self.name!r}, {self.time!r})"


class Decision:
    """The fate of one item: ``keep`` and the ``rule`` that kept it (``keep-daily``, ``protected``,
    ``not replicated``, ``keep-all``), or ``keep`` False and an empty rule."""

    __slots__ = ("item", "keep", "rule")

    def __init__(self, item: Item, keep: bool, rule: str) -> None:
        self.item = item
        self.keep = keep
        self.rule = rule

    def __repr__(self) -> str:
        return f"Decision({self.item.name!r}, {'keep' if self.keep else 'remove'}, {self.rule!r})"


def _periods(moment: datetime) -> dict[str, tuple[int, ...]]:
    iso = moment.isocalendar()
    return {"hourly": (moment.year, moment.month, moment.day, moment.hour),
            "daily": (moment.year, moment.month, moment.day), "weekly": (iso[0], iso[1]),
            "monthly": (moment.year, moment.month), "yearly": (moment.year,)}


def _own(index: int) -> object:
    """``keep-last``: each item is its own period."""
    return index


def _period_of(periods: list[dict[str, tuple[int, ...]]], rule: str) -> Callable[[int], object]:
    return lambda index: periods[index][rule]


def select(items: Iterable[Item], policy: Policy, tz: tzinfo | None = None) -> list[Decision]:
    """One decision per item, newest first (ties: the name sorting last first). ``tz`` is the time zone
    periods are counted in (default: the host's local time, as Proxmox does)."""
    ordered = sorted(items, key=lambda item: (item.time, item.name), reverse=True)
    if policy.keeps_all:
        return [Decision(item, True, "keep-all") for item in ordered]
    periods = [_periods(datetime.fromtimestamp(item.time, tz)) for item in ordered]
    kept: dict[int, str] = {}  # index in ``ordered`` -> the rule that kept it
    passed_over: set[int] = set()  # lost its period to a newer item under some option: no later one looks
    always = {i: (PROTECTED if item.protected else PENDING) for i, item in enumerate(ordered)
              if item.protected or item.pending}
    for rule in RULES:
        count = policy.counts.get(rule)
        if count is None:
            continue
        key = _own if rule == "last" else _period_of(periods, rule)
        covered = {key(i) for i in kept}
        chosen: set[object] = set()
        for index in range(len(ordered)):
            if index in kept or index in always or index in passed_over:
                continue
            period = key(index)
            if period in covered:
                continue
            if period in chosen:
                passed_over.add(index)
                continue
            if len(chosen) >= count:
                break
            chosen.add(period)
            kept[index] = f"keep-{rule}"
    return [Decision(item, index in kept or index in always, kept.get(index) or always.get(index, ""))
            for index, item in enumerate(ordered)]
