"""``retention explain``: what a retention policy keeps, and the rule that keeps each snapshot.

The policy options (``--keep-last N`` ... ``--keep-yearly N``, or ``--policy keep-RULE=N,...``) are the
same here, for ``snapshot prune`` and for ``backup`` (hivectl/retention: one grammar, Proxmox's).
"""

from __future__ import annotations

import argparse

from hivectl.cli import render
from hivectl.cli.context import Context
from hivectl.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from hivectl.retention import Decision, Policy

POLICY_HELP = """\
retention options (Proxmox's prune options, applied in this order; each counts only periods the earlier
ones left; a period without a snapshot does not count; weeks are ISO weeks, Monday to Sunday):
  --keep-last N      the N newest
  --keep-hourly N    the newest of each of the N newest hours that have one
  --keep-daily N     ... days      --keep-weekly N   ... weeks
  --keep-monthly N   ... months    --keep-yearly N   ... years
  --policy P         the same as one string: keep-last=3,keep-daily=7 (not with the options)
A snapshot with the ZFS user property hivectl:protected=on, or hivectl:replication=pending (not yet
replicated), is always kept and counts for nothing."""


def add_policy_options(p: argparse.ArgumentParser) -> None:
    """The ``--keep-RULE N`` options and ``--policy``, as ``policy_of`` reads them."""
    from hivectl.retention import RULES

    for rule in RULES:
        p.add_argument(f"--keep-{rule}", dest=f"keep_{rule}", metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--policy", metavar="P", help=argparse.SUPPRESS)


def policy_of(args: argparse.Namespace) -> Policy:
    """The policy of the options ``add_policy_options`` added (the errors name the option and value)."""
    from hivectl.retention import RULES, parse_policy
    from hivectl.retention.policy import policy_from_options

    options = {rule: getattr(args, f"keep_{rule}") for rule in RULES}
    if args.policy is not None:
        if any(value is not None for value in options.values()):
            raise UsageError("--policy and --keep-* options cannot be mixed; give one or the other")
        return parse_policy(args.policy, None, "--policy")
    return policy_from_options(options)


def decision_rows(decisions: list[Decision]) -> list[list[str]]:
    from datetime import datetime

    return [[d.item.name, datetime.fromtimestamp(d.item.time).isoformat(sep=" ", timespec="seconds"),
             "keep" if d.keep else "remove", d.rule or "-"] for d in decisions]


def show_decisions(decisions: list[Decision], as_json: bool) -> None:
    if as_json:
        render.as_json([{"name": d.item.name, "time": d.item.time, "keep": d.keep, "rule": d.rule or None}
                        for d in decisions])
    else:
        render.table(["SNAPSHOT", "TIME", "DECISION", "RULE"], decision_rows(decisions))


def configure_retention(p: argparse.ArgumentParser) -> None:
    p.description = """\
'retention explain' shows what a retention policy keeps and removes, newest first, with the option that
keeps each item. Give the snapshots of a guest (--guest NAME: their creation times and properties, ZFS)
or names that carry their time (vm-bhyve's 2026-12-03-10:00:00, backup-20261203, ISO 8601; local time
unless the stamp ends in Z). Nothing is changed; 'hivectl snapshot prune' applies the same policy.

""" + POLICY_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = """examples:
  hivectl retention explain --keep-daily 7 --keep-weekly 4 --guest web
  hivectl retention explain --policy keep-last=2,keep-monthly=3 backup-20261201 backup-20261115"""
    p.add_argument("action", choices=("explain",))
    add_policy_options(p)
    p.add_argument("--guest", metavar="NAME", help="the snapshots of this guest (ZFS)")
    p.add_argument("--json", action="store_true", help="the decisions as JSON")
    p.add_argument("names", nargs="*", metavar="SNAPSHOT")
    p.intermixed = True  # type: ignore[attr-defined]  # options may come between the names (cli/main.py)


def run_retention(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.ops.retention import explain

    if bool(args.guest) == bool(args.names):
        raise UsageError("give either --guest NAME or snapshot names, not both and not neither")
    show_decisions(explain(ctx, policy_of(args), args.names, args.guest), args.json)
    return 0
