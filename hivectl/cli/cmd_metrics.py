"""``hivectl metrics``: the host's and its guests' metrics in Prometheus text, without the daemon.

For node_exporter's textfile collector (``hivectl metrics > /var/tmp/node_exporter/hivectl.prom.$$ && mv``
into its directory from cron) or a one-off look; ``--json`` prints the same snapshot as plain data.
docs/metrics.md lists every metric and its source on each platform.
"""

from __future__ import annotations

import argparse
import sys

from hivectl.cli.context import Context


def configure_metrics(p: argparse.ArgumentParser) -> None:
    p.description = ("Print the metrics of the host and its guests in Prometheus text format "
                     "(the daemon serves the same at /metrics).")
    p.add_argument("--json", action="store_true", help="print the collected values as JSON instead")


def run_metrics(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.metrics.collect import scrape

    snapshot = scrape(ctx.store, ctx.host, ctx.driver)
    if args.json:
        import dataclasses
        import json

        sys.stdout.write(json.dumps(dataclasses.asdict(snapshot), indent=1) + "\n")
        return 0
    from hivectl.metrics.exposition import text

    sys.stdout.buffer.write(text(snapshot))
    sys.stdout.flush()
    return 0
