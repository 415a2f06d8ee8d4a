"""``hivectl events`` and ``hivectl audit``: reading the two logs; and the command line's side of the audit
seam (``audited``, called once by ``hivectl.cli.main`` for every command that changes something).

Only parsing and rendering: reading and filtering are ``hivectl/journal/query.py``'s (docs/events.md).
"""

from __future__ import annotations

import sys

from hivectl.cli.context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from hivectl.cli.registry import Command

# The API's name where it is not the command path joined with '_' (tests/test_api_coverage.py's RENAMED):
# the audit line names the operation as the API and the catalog do, whichever front end ran it.
API_NAMES = {"set": "set_settings", "edit": "configure", "import": "import_guest"}
READ_ONLY_ACTIONS = frozenset({"list", "show", "find", "info"})


def operation_name(command: Command, args: object) -> str | None:
    """The API operation a parsed command line changes something through, or None when it only reads
    (``--dry-run`` given, a read-only action, a command without ``--dry-run``: none changes anything)."""
    if getattr(args, "dry_run", True) is not False:
        return None
    path = [command.name]
    for attribute in ("action", "forward_action"):
        value = getattr(args, attribute, None)
        if isinstance(value, str):
            path.append(value)
    if path[-1] in READ_ONLY_ACTIONS:
        return None
    name = API_NAMES.get(command.name) if len(path) == 1 else None
    return name or "_".join(path).replace("-", "_")


def audited(ctx: Context, command: Command, args: object, run: Callable[..., int]) -> int:
    """Run a command that changes something through the audit seam (hivectl/journal/audit.py)."""
    from hivectl.journal.audit import perform

    operation = operation_name(command, args)
    if operation is None:
        return run(ctx, args) or 0
    arguments = {k: v for k, v in vars(args).items() if k not in ("dry_run", "action", "forward_action")}

    def warn(error: OSError) -> None:
        sys.stderr.write(f"hivectl: audit log not written: {error}\n")

    return perform(lambda: str(ctx.store.config_dir), operation, arguments, lambda: run(ctx, args) or 0,
                   failed=lambda status: f"exit status {status}" if status else "", on_log_error=warn)


# -- hivectl events ------------------------------------------------------------------------------------------
def configure_events(p: argparse.ArgumentParser) -> None:
    p.description = """\
Show the event log (vm_dir/.config/events.jsonl): guests created, destroyed, changed, started, stopped,
rebooted, crashed, consoles opened, snapshots, the daemon's operations. Each event has a sequence number;
--since N shows the events after N (at least the last 10,000 are kept), --follow waits for new ones."""
    p.epilog = """examples:
  hivectl events
  hivectl events --since 1200 --follow --json"""
    p.add_argument("--since", metavar="N", help="only events after sequence number N")
    p.add_argument("--guest", metavar="NAME", help="only events of this guest")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing events as they happen")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _who(who: Any) -> str:
    if not isinstance(who, dict):
        return "-"
    if "token" in who:
        return f"token:{who['token']}"
    user = who.get("sudo_user") or who.get("doas_user") or who.get("user")
    return f"{user}(uid {who.get('uid')})" if user else f"uid {who.get('uid')}"


def _details(details: Any) -> str:
    if not isinstance(details, dict) or not details:
        return ""
    return " ".join(f"{k}={v}" for k, v in details.items())


def _event_line(event: dict[str, Any], as_json: bool) -> str:
    if as_json:
        import json

        return json.dumps(event, separators=(",", ":"))
    return "  ".join([str(event.get("seq")), str(event.get("time")), str(event.get("type")),
                      str(event.get("target")), _who(event.get("who")), _details(event.get("details"))]).rstrip()


def run_events(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.journal.query import about_guest, events_log, parse_seq

    since = parse_seq(args.since)
    cursor = events_log(str(ctx.store.config_dir)).cursor(since)
    reported = 0
    interval = 0.2
    try:
        while True:
            for event in cursor.poll():
                if args.guest is None or about_guest(event, args.guest):
                    sys.stdout.write(_event_line(event, args.json) + "\n")
            for first, last in cursor.missed[reported:]:
                sys.stderr.write(f"hivectl: events {first} to {last} are no longer kept\n")
            reported = len(cursor.missed)
            if not args.follow:
                return 0
            sys.stdout.flush()
            import time

            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        cursor.close()


# -- hivectl audit -------------------------------------------------------------------------------------------
def configure_audit(p: argparse.ArgumentParser) -> None:
    p.description = """\
Show the audit log (vm_dir/.config/audit.jsonl, mode 0600): every change made through the CLI, the
Python API or hivectld, one line each: time, who (uid, sudo user or token), operation, target, arguments
(secrets hidden), result (ok, error with its message, refused by the daemon)."""
    p.epilog = """examples:
  hivectl audit --guest web1
  hivectl audit --since 2h
  hivectl audit --since 2026-12-03T12:00 --json"""
    p.add_argument("--guest", metavar="NAME", help="only changes of this guest")
    p.add_argument("--since", metavar="TIME|SEQ", help="a sequence number, a UTC time or an age (30m, 2h, 7d)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def run_audit(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.journal.query import audit_lines

    for line in audit_lines(str(ctx.store.config_dir), args.guest, args.since):
        if args.json:
            import json

            sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
            continue
        result = str(line.get("result"))
        if line.get("message"):
            result += f": {line['message']}"
        targets = line.get("target")
        target = " ".join(targets) if isinstance(targets, list) else str(targets)
        sys.stdout.write("  ".join([str(line.get("seq")), str(line.get("time")), _who(line.get("who")),
                                    str(line.get("operation")), target, result]) + "\n")
    return 0
