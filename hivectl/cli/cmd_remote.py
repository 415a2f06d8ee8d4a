"""``hivectl remote`` (add, list, remove), ``-H NAME`` / ``NAME:guest`` forwarding and ``list --all-remotes``.

Remotes are other hosts' hivectl over ssh (docs/remotes.md); what is stored and how each value is checked
is hivectl/remote/config.py, how they are reached hivectl/remote/ssh.py and client.py.
"""

from __future__ import annotations

import sys
from typing import Any

from hivectl.cli import render
from hivectl.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from hivectl.cli.context import Context

# Commands that need this terminal (an editor, a console): over ssh they need ``ssh -t``, not a request.
INTERACTIVE = frozenset({"console", "configure", "edit", "remote"})


def configure_remote(p: argparse.ArgumentParser) -> None:
    p.description = """\
Other hosts' hivectl, reached over ssh (no new port, no certificates): every command then takes -H NAME
(or NAME:guest where it names a guest), and 'list --all-remotes' lists every host at once.

  remote add NAME ssh://[user@]host[:port] [--command PATH] [--identity FILE] [--known-hosts FILE]
  remote list [--json]
  remote remove NAME

--command is hivectl's path on the remote (default: hivectl, found on the remote's PATH). Logins never ask
for a password (ssh BatchMode): use a key (--identity, or ssh's own configuration and agent)."""
    p.epilog = """examples:
  hivectl remote add dr ssh://root@dr.example.net --identity /root/.ssh/id_hivectl
  hivectl -H dr list
  hivectl start dr:web1
  hivectl list --all-remotes"""
    p.add_argument("action", choices=("add", "list", "remove"))
    p.add_argument("args", nargs="*", metavar="ARG")
    from hivectl.cli.options import add_json_and_dry_run, add_valued

    add_valued(p, ("--command", "PATH", "hivectl's path on the remote (add)"),
               ("--identity", "FILE", "the private key to log in with (add)"),
               ("--known-hosts", "FILE", "a known_hosts file that lists the remote's key (add)"))
    add_json_and_dry_run(p, "list as JSON", "check and show, record nothing (add, remove)")


def run_remote(ctx: Context, args: argparse.Namespace) -> int:
    from hivectl.remote import config

    config_dir = ctx.store.config_dir
    if args.action == "list":
        if args.args:
            raise UsageError("remote list takes no arguments")
        rows = config.rows(config_dir)
        if args.json:
            render.as_json(rows)
        else:
            render.table(["NAME", "URL", "COMMAND", "IDENTITY"],
                         [[r["name"], r["url"], r["command"], r["identity"] or "-"] for r in rows])
        return 0
    if args.action == "remove":
        if len(args.args) != 1:
            raise UsageError("usage: hivectl remote remove NAME")
        gone = config.remove_checked(config_dir, args.args[0], args.dry_run)
        if args.dry_run:
            sys.stdout.write(f"would forget remote {gone.name} ({gone.url}); nothing on it changes\n")
        return 0
    if len(args.args) != 2:
        raise UsageError("usage: hivectl remote add NAME ssh://[user@]host[:port] [--command PATH] "
                         "[--identity FILE] [--known-hosts FILE]")
    new = config.add_checked(config_dir, args.args[0], args.args[1], args.command, args.identity,
                             args.known_hosts, args.dry_run)
    if args.dry_run:
        sys.stdout.write(f"would record remote {new.name}: {new.url} (hivectl there: {new.command})\n")
    return 0


# -- -H NAME and NAME:guest ---------------------------------------------------------------------------------
def _targets(command: str, namespace: object) -> list[str]:
    """The guests (switches, datastores) the command names: the values of its catalog operation's target
    parameter, found on the command line as hivectl/cli/delegation.py finds them."""
    from hivectl import catalog

    name = command.replace("-", "_")
    action = getattr(namespace, "action", None)
    if isinstance(action, str):
        name = f"{name}_{action.replace('-', '_')}"
    operation = catalog.by_name().get(name)
    values: list[str] = []
    for attr in ([operation.target] if operation is not None and operation.target else []) + ["name", "names"]:
        value: Any = getattr(namespace, attr, None)
        values += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return values


def remote_of_targets(command: str, namespace: object) -> tuple[str | None, set[str]]:
    """The remote that ``NAME:guest`` arguments name (all the same one) and those words, or ``(None, set())``.

    A guest's own name never holds ':' (hivectl/validate.py), so ``NAME:`` can only mean a remote."""
    words = {v for v in _targets(command, namespace) if ":" in v}
    remotes = {v.split(":", 1)[0] for v in words}
    if len(remotes) > 1:
        raise UsageError(f"{command}: guests of several remotes at once ({', '.join(sorted(remotes))})")
    return (remotes.pop(), words) if remotes else (None, set())


def forward(driver: str | None, remote_name: str, command: str, words: list[str],
            targets: set[str] | frozenset[str] = frozenset()) -> int:
    """Run ``hivectl COMMAND WORDS...`` on the remote ``remote_name``; its exit status.

    The ``targets`` words (``REMOTE:guest``) lose their prefix, no other word is touched; the remote's
    output is this command's output, and its error lines keep the ``hivectl:`` prefix with the remote's
    name after it."""
    from hivectl.cli.context import Context
    from hivectl.remote import config, connect

    if command in INTERACTIVE:
        raise UsageError(f"{command} needs this terminal: run it over 'ssh -t' on the remote instead of -H")
    config.check_name(None, "-H", remote_name)
    prefix = f"{remote_name}:"
    argv = [*(["--driver", driver] if driver else []), command,
            *(w[len(prefix):] if w in targets and w.startswith(prefix) else w for w in words)]
    remote = connect(Context(driver), remote_name)
    status, err = remote.cli(argv)
    for line in err.splitlines():
        if line.startswith("hivectl: "):
            line = f"hivectl: {remote_name}: {line[len('hivectl: '):]}"
        sys.stderr.write(line + "\n")
    return status


# -- list --all-remotes -------------------------------------------------------------------------------------
def list_all_remotes(ctx: Context, args: argparse.Namespace) -> int:
    """This host's guests and every remote's, fetched in parallel, with a HOST column (or ``host`` key)."""
    from concurrent.futures import ThreadPoolExecutor

    from hivectl.ops.listing import COLUMNS, JSON_KEYS, Row, cells, list_guests, select_columns
    from hivectl.remote import RemoteError, remotes

    columns = select_columns(args.columns) if args.columns is not None else COLUMNS
    targets = remotes(ctx)

    def fetch(remote: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = remote.call("guests", {"running_only": bool(args.running), "tag": args.tag})
        return rows

    results: dict[str, list[dict[str, Any]] | RemoteError] = {}
    with ThreadPoolExecutor(max_workers=min(16, len(targets) or 1)) as pool:
        futures = {r.name: pool.submit(fetch, r) for r in targets}
        results["local"] = [row.as_json() for row in list_guests(ctx.store, args.running, args.tag)]
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except RemoteError as error:
                results[name] = error
    failed = 0
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, result in results.items():
        if isinstance(result, RemoteError):
            failed += 1
            sys.stderr.write(f"hivectl: {result}\n")
        else:
            rows += [(name, row) for row in result]
    if args.json:
        keys = [key for c in columns for key in JSON_KEYS[c]]
        render.json_rows([{"host": host, **{k: row.get(k) for k in keys}} for host, row in rows])
    else:
        def row_of(r: dict[str, Any]) -> Row:
            return Row(r["name"], r["datastore"], r["loader"], r["cpu"], r["memory"], r.get("vnc") or "",
                       r.get("auto_order"), r["state"], r.get("pid"), list(r.get("tags") or []))

        render.table(["HOST", *columns], [[host, *cells(row_of(row), columns)] for host, row in rows])
    return 1 if targets and failed == len(targets) else 0
