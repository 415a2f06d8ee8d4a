"""Benchmark: a simulated year of hourly snapshots pruned under a keep policy (hivectl/retention).

Target (issue 12.4): under 5 s. The series is 8,760 snapshots, one an hour through 2026 (every 50th one
protected, the newest 24 not yet replicated), pruned day after day the way a nightly cron job would:
after each simulated midnight the policy runs over what the previous runs left, so the selection runs
365 times over a series that grows to the policy's size and stays there, then once over the whole
unpruned year. Prints JSON: the CPU seconds of both, and how many snapshots each kept.

    python3 benchmarks/bench_retention.py [--policy keep-last=24,keep-daily=30,keep-weekly=8,keep-monthly=12]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hivectl.retention import Item, parse_policy, select

DEFAULT = "keep-last=24,keep-hourly=48,keep-daily=30,keep-weekly=8,keep-monthly=12,keep-yearly=5"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", default=DEFAULT)
    args = parser.parse_args()
    policy = parse_policy(args.policy, None, "--policy")
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    hours = 365 * 24
    year = [Item(f"auto-{h:05}", start + h * 3600, protected=h % 50 == 0, pending=h >= hours - 24)
            for h in range(hours)]

    began = time.process_time()
    whole = select(year, policy, UTC)
    once = time.process_time() - began

    began = time.process_time()
    kept: list[Item] = []
    runs = 0
    for day in range(365):
        kept += year[day * 24:(day + 1) * 24]
        kept = [d.item for d in select(kept, policy, UTC) if d.keep]
        runs += 1
    nightly = time.process_time() - began

    result = {
        "policy": policy.text(),
        "snapshots": hours,
        "whole_year_once_cpu_s": round(once, 4),
        "whole_year_kept": sum(d.keep for d in whole),
        "nightly_runs": runs,
        "nightly_total_cpu_s": round(nightly, 4),
        "nightly_kept_at_the_end": len(kept),
        "target_s": 5.0,
        "met": once + nightly < 5.0,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
