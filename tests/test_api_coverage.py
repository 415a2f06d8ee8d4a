"""Every command and subcommand of the CLI's command table has a ``hivectl.api.Hivectl`` counterpart.

Walks ``hivectl.cli.registry.COMMANDS``, builds each command's real argument parser and descends into its
subcommands (argparse sub-parsers such as ``switch create`` or ``switch forward add``, and the ``action``
choices of ``datastore``/``template``/``disk``). A command added to the CLI without an API method fails
here (issue 9.2).
"""

from __future__ import annotations

import argparse
import inspect

from hivectl.api import Hivectl
from hivectl.cli.main import build_parser
from hivectl.cli.registry import COMMANDS

# Where the API name is not the command path joined with '_' (a method called ``list`` or ``set`` would
# shadow the builtins inside the class, and ``edit`` is the same command as ``configure``).
RENAMED = {
    ("list",): "guests",
    ("get",): "settings",
    ("set",): "set_settings",
    ("edit",): "configure",
    ("template", "list"): "templates",
    ("template", "show"): "template_show",
    ("import",): "import_guest",  # 'import' is a Python keyword
}


# Subcommands that only read (their parser may still carry --dry-run for its siblings, as 'datastore' does).
READ_ONLY = {"list", "show", "find", "info"}


def _paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subparsers:
        found: list[tuple[str, ...]] = []
        for name, child in subparsers[0].choices.items():
            found.extend(_paths(child, (*prefix, name)))
        return found
    action = [a for a in parser._actions if a.dest == "action" and a.choices]
    if action:
        return [(*prefix, str(choice)) for choice in action[0].choices]  # type: ignore[union-attr]
    return [prefix]


def command_paths() -> list[tuple[str, ...]]:
    paths = []
    for command in COMMANDS:
        parser, _ = build_parser(command)
        paths.extend(_paths(parser, (command.name,)))
    return paths


def api_name(path: tuple[str, ...]) -> str:
    return RENAMED.get(path, "_".join(path).replace("-", "_"))


def test_the_walk_finds_subcommands() -> None:
    paths = command_paths()
    for expected in [("switch", "create"), ("switch", "forward", "add"), ("datastore", "add"), ("tags", "add"),
                     ("image", "provision"), ("autostart", "remove"), ("start",)]:
        assert expected in paths


def test_every_command_has_an_api_method_with_a_documented_example() -> None:
    missing = [" ".join(p) + f" -> Hivectl.{api_name(p)}" for p in command_paths()
               if not callable(getattr(Hivectl, api_name(p), None))]
    assert missing == []
    undocumented = sorted({api_name(p) for p in command_paths()
                           if not (inspect.getdoc(getattr(Hivectl, api_name(p))) or "").strip()})
    assert undocumented == []


def test_every_mutating_api_method_takes_dry_run() -> None:
    """A command whose parser has --dry-run has an API method with ``dry_run``."""
    lacking = []
    for command in COMMANDS:
        parser, _ = build_parser(command)
        for path in _paths(parser, (command.name,)):
            leaf = parser
            for word in path[1:]:
                subs = [a for a in leaf._actions if isinstance(a, argparse._SubParsersAction)]
                if subs:
                    leaf = subs[0].choices[word]
            if path[-1] in READ_ONLY:
                continue
            if any("--dry-run" in a.option_strings for a in leaf._actions):
                method = getattr(Hivectl, api_name(path), None)
                if method is not None and "dry_run" not in inspect.signature(method).parameters:
                    lacking.append(api_name(path))
    assert sorted(set(lacking)) == []
