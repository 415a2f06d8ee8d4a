"""``replicate`` (jobs, --run-due, status) and ``promote``: issue 12 item 3, docs/replication.md."""

from __future__ import annotations

import argparse
import sys
import time

from hivectl.cli import render
from hivectl.cli.context import Context
from hivectl.errors import UsageError

ACTIONS = ("list", "remove", "status", "run")


def configure_replicate(p: argparse.ArgumentParser) -> None:
    p.description = """\
Keep a stopped copy of a ZFS guest on another host (or another ZFS vm_dir of this one: local:zfs:POOL/DS),
in the vm_dir layout. Each run snapshots the guest (repl-YYYYmmddTHHMMSSZ), sends what the copy lacks
(zfs send/recv, resumed where it was interrupted), holds the last common snapshot on both sides and prunes
both with the --keep policy (the retention grammar of 'hivectl snapshot prune'). The copy refuses a plain
'start'; 'hivectl promote NAME' on that host makes it a normal guest."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = """usage forms:
  hivectl replicate NAME REMOTE --every 15m --keep keep-last=4,keep-hourly=24,keep-daily=7
  hivectl replicate list | status [--json] | remove NAME [REMOTE] | run NAME [REMOTE]
  hivectl replicate --run-due [--now TIME]      (cron: * * * * * root hivectl replicate --run-due)"""
    p.add_argument("words", nargs="*", metavar="NAME REMOTE | ACTION ...")
    from hivectl.cli.options import add_json_and_dry_run, add_valued

    add_valued(p, ("--every", "INTERVAL", "how often (15m, 1h, 1d; at least 1m)"),
               ("--keep", "POLICY", "keep-last=N,keep-hourly=N,... on both sides"))
    p.add_argument("--run-due", action="store_true", help="run every job whose time has come")
    add_valued(p, ("--now", "TIME", "the time to run at (ISO 8601 or seconds; for tests)"))
    add_json_and_dry_run(p, "status or results as JSON", "show what would change")


def _now(text: str | None) -> float | None:
    if text is None:
        return None
    from datetime import datetime

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UsageError(f"--now {text}: expected ISO 8601 (2026-12-03T15:00:00Z) or seconds") from None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size:
            return f"{value // size}{unit}"
    return f"{value}s"


def _stamp(value: object) -> str:
    from datetime import datetime

    if value is None:
        return "-"
    return datetime.fromtimestamp(float(str(value))).isoformat(sep=" ", timespec="seconds")


def _results(results: list[dict[str, object]], as_json: bool) -> int:
    if as_json:
        render.as_json(results)
    for r in results:
        if as_json:
            break
        if r.get("skipped"):
            sys.stdout.write(f"{r['job']}: skipped ({r['skipped']})\n")
        elif r.get("error"):
            sys.stdout.write(f"{r['job']}: failed: {r['error']}\n")
        else:
            sys.stdout.write(f"{r['job']}: {r['common']} ({r['bytes']} bytes sent)\n")
    return 1 if any(r.get("error") for r in results) else 0


def run_replicate(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.replicate import jobs, run
    from hivectl.replicate.schedule import every_text

    words = list(args.words)
    now = _now(args.now)
    if args.run_due:
        if words:
            raise UsageError("--run-due takes no NAME or ACTION")
        if args.dry_run:
            for job in run.due_jobs(ctx, now if now is not None else time.time()):
                sys.stdout.write(f"would run {job.key}\n")
            return 0
        return _results([r.as_json() for r in run.run_due(ctx, now)], args.json)
    if not words:
        raise UsageError("replicate: give NAME REMOTE --every ... --keep ..., or list/status/remove/run")
    action = words[0]
    if action == "list" and len(words) == 1:
        rows = jobs.load(ctx.store.config_dir)
        if args.json:
            render.as_json([{"guest": j.guest, "remote": j.remote, "every": j.every, "keep": j.keep} for j in rows])
        else:
            render.table(["NAME", "REMOTE", "EVERY", "KEEP"], [[j.guest, j.remote, every_text(j.every), j.keep]
                                                                for j in rows])
        return 0
    if action == "status" and len(words) == 1:
        status = run.status(ctx, now)
        if args.json:
            render.as_json(status)
        else:
            render.table(["NAME", "REMOTE", "RECOVERY POINT", "AGE", "LAST SUCCESS", "BYTES", "FAILURES", "ERROR"],
                         [[s["guest"], s["remote"], s["snapshot"] or "-", _age(s["recovery_point_age"]),
                           _stamp(s["last_success"]), s["bytes_last"], s["failures"], s["last_error"] or "-"]
                          for s in status])
        return 0
    if action in ("remove", "run") and len(words) in (2, 3):
        remote = words[2] if len(words) == 3 else None
        if action == "remove":
            for job in jobs.remove(ctx.store.config_dir, words[1], remote, args.dry_run):
                sys.stdout.write(f"{'would remove' if args.dry_run else 'removed'} {job.key}\n")
            return 0
        found = [j for j in jobs.load(ctx.store.config_dir) if j.guest == words[1]
                 and (remote is None or j.remote == remote)]
        if not found:
            raise UsageError(f"no replication job for {words[1]}" + (f" to {remote}" if remote else ""))
        if args.dry_run:
            for job in found:
                sys.stdout.write(f"would run {job.key}\n")
            return 0
        moment = now if now is not None else time.time()
        return _results([run.run_job(ctx, job, moment).as_json() for job in found], args.json)
    if len(words) != 2 or action in ACTIONS:
        raise UsageError("replicate: give NAME REMOTE --every INTERVAL --keep POLICY, or one of "
                         "list, status, remove NAME [REMOTE], run NAME [REMOTE]")
    if not args.every or not args.keep:
        raise UsageError("replicate NAME REMOTE needs --every INTERVAL and --keep POLICY")
    ctx.store.get(words[0])
    job = jobs.make_job(words[0], words[1], args.every, args.keep, now if now is not None else
                        time.time())
    jobs.add(ctx.store.config_dir, job, args.dry_run)
    sys.stdout.write(f"{'would replicate' if args.dry_run else 'replicating'} {job.guest} to {job.remote} every "
                     f"{every_text(job.every)}, keeping {job.keep}\n")
    return 0


def configure_promote(p: argparse.ArgumentParser) -> None:
    p.description = """\
On the host that keeps a replica: make it a normal guest and start it. Refused while the source still runs
the guest, or when the source cannot be asked (--force when it is down for good)."""
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true", help="promote even if the source cannot be asked")
    p.add_argument("--source", metavar="REMOTE", help="the remote to ask (default: the source's host name)")
    p.add_argument("--no-start", action="store_true", help="promote but do not start")
    p.add_argument("--dry-run", action="store_true", help="show the rollbacks, change nothing")


def run_promote(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.replicate.promote import promote

    result = promote(ctx, args.name, args.force, args.source, not args.no_start, args.dry_run)
    if args.dry_run:
        render.plan_lines(" ".join(argv) for argv in result.plan)
        return 0
    started = "started" if result.started else "not started"
    sys.stdout.write(f"{args.name} promoted at {result.snapshot} ({started})\n")
    return 0
