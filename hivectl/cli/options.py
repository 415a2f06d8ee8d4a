"""Option blocks that several commands declare alike, declared once (``remote``, ``replicate``, ...).

A command with subcommands in words (``remote add|list|remove``, ``replicate NAME REMOTE | list | ...``)
takes a few value options (``--name VALUE``, each with its metavar and help), ``--json`` for its listings
and ``--dry-run`` for its changes; spelling that block per command is how the two copies came apart.
The helpers take the parser (or quickargs' recorder: they only call ``add_argument``), so a command's
help and the fast path of ``hivectl/cli/quickargs.py`` stay as they were.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import argparse


def add_valued(p: argparse.ArgumentParser, *options: tuple[str, str, str]) -> None:
    """``(option, metavar, help)`` rows, each an option that takes one value (default None)."""
    for option, metavar, text in options:
        p.add_argument(option, metavar=metavar, help=text)


def add_json_and_dry_run(p: argparse.ArgumentParser, json_help: str, dry_run_help: str) -> None:
    """``--json`` (the command's listings as JSON) and ``--dry-run`` (its changes shown, none made)."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--dry-run", action="store_true", help=dry_run_help)
