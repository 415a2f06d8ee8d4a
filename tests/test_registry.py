"""The CLI's command table is checked, not trusted: every entry resolves to real handlers with help text.

``hivectl.cli.registry.COMMANDS`` names each command's module as a string so that commands are imported
only when used; this test is what keeps those strings honest (issue 9.5: "the command registry is a string
table nothing checks"). The API coverage and ``--dry-run`` tests walk the same table.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re

import pytest

import hivectl.cli
from hivectl.cli.main import build_parser, overview, resolve
from hivectl.cli.registry import COMMANDS, GROUPS, Command

HANDLER = re.compile(r"(configure|run)_([a-z0-9_]+)$")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_entry_resolves_to_a_parser_with_help_and_a_runner(command: Command) -> None:
    configure, run = command.handlers()
    assert len(inspect.signature(configure).parameters) == 1  # (parser)
    assert len(inspect.signature(run).parameters) == 2  # (ctx, args)
    parser, runner = build_parser(command)
    assert runner is run
    assert command.summary.strip() and not command.summary.endswith(".")
    help_text = parser.format_help()
    assert command.summary in help_text or (parser.description or "").strip()
    assert _options_without_help(parser) == []


def _options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    """Options of a parser and of all its sub-parsers (``switch forward add``) that have no help text."""
    lacking = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                lacking.extend(_options_without_help(child))
        elif action.option_strings and not isinstance(action, argparse._HelpAction) and not action.help:
            lacking.append(f"{parser.prog} {'/'.join(action.option_strings)}")
    return lacking


def test_names_are_unique_lowercase_and_resolve_to_themselves() -> None:
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for command in COMMANDS:
        assert re.fullmatch(r"[a-z][a-z-]*", command.name)
        assert resolve(command.name) is command
        assert command.group in GROUPS


def test_every_group_is_shown_in_the_overview() -> None:
    text = overview()
    assert all(f"  {group}:" in text for group in GROUPS)
    assert all(f"    {c.name:<12}{c.summary}" in text for c in COMMANDS)


def test_no_handler_is_left_out_of_the_table() -> None:
    """A ``configure_x``/``run_x`` pair in a command module that no entry names is a command nobody can run."""
    named = {(c.module, c.attr) for c in COMMANDS}
    orphans = []
    for info in pkgutil.iter_modules(hivectl.cli.__path__, "hivectl.cli."):
        if not info.name.rsplit(".", 1)[1].startswith("cmd_"):
            continue
        module = importlib.import_module(info.name)
        for attr in dir(module):
            match = HANDLER.match(attr)
            if match and inspect.isfunction(getattr(module, attr)) \
                    and getattr(module, attr).__module__ == info.name and (info.name, match[2]) not in named:
                orphans.append(f"{info.name}.{attr}")
    assert orphans == []


def test_a_broken_entry_is_refused_with_its_name() -> None:
    with pytest.raises(LookupError, match=r"'nosuch'.*configure_nosuch or run_nosuch"):
        Command("nosuch", "hivectl.cli.cmd_guests", "a command that does not exist", "guests").handlers()
    with pytest.raises(ModuleNotFoundError):
        Command("list", "hivectl.cli.cmd_nosuch", "list guests", "guests").handlers()
