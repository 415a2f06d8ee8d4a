"""hivectl/cli/quickargs.py reads a plain command line exactly as argparse would, or leaves it to argparse.

For every command of the table whose ``configure_`` function the fast path can record, a few hundred
command lines are generated from its own options and positionals (values, option order, positional
counts, unknown words, ``--``, ``-h``), and both parsers read each: whenever the fast path answers, its
namespace must equal argparse's, and whenever argparse refuses a line, the fast path must not answer.
"""

from __future__ import annotations

import random

import pytest

from hivectl.cli import quickargs
from hivectl.cli.main import build_parser, parse_command, resolve
from hivectl.cli.registry import COMMANDS, Command
from hivectl.errors import UsageError

VALUES = ("1", "7", "2.5", "web1", "a b", "", "-x", "-1", "--json", "10G", "yes")
NOISE = ("--bogus", "-", "--", "-h", "--help", "-rj", "--js", "--json=1")


def recorded(command: Command) -> quickargs.Recorder | None:
    configure, _ = command.handlers()
    return quickargs.record(configure)  # type: ignore[arg-type]


FAST = [c for c in COMMANDS if recorded(c) is not None]


def _argv(recorder: quickargs.Recorder, rng: random.Random) -> list[str]:
    words: list[list[str]] = []
    positionals: list[str] = []
    for argument in recorder.arguments:
        choices = [str(c) for c in argument.choices or ()]
        if not argument.options:
            low, high = {None: (1, 1), "?": (0, 1), "*": (0, 3), "+": (1, 3)}[argument.nargs]
            count = rng.randint(max(0, low - (rng.random() < 0.1)), high + (rng.random() < 0.1))
            positionals += [rng.choice(choices or ["web1", "db2", "x", "3", "com1", "a=b", "1G"])
                            for _ in range(count)]
            continue
        if rng.random() < (0.1 if argument.required else 0.4):
            continue
        option = rng.choice(argument.options)
        if argument.action == "store":
            value = rng.choice(choices) if choices and rng.random() < 0.8 else rng.choice(VALUES)
            words.append([option, value])
        else:
            words.append([option])
    cut = rng.randrange(len(positionals) + 1)
    if rng.random() < 0.5:
        parts = [[p] for p in positionals]
        rng.shuffle(words)
        words = [*parts[:cut], *words, *parts[cut:]] if rng.random() < 0.7 else [*words, *parts]
    else:
        words = [*words, *([p] for p in positionals)]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words) + 1), [rng.choice(NOISE)])
    return [w for group in words for w in group]


def _argparse(command: Command, argv: list[str]) -> dict[str, object] | None:
    parser, _ = build_parser(command)
    try:
        return vars(parser.parse_args(argv))
    except (UsageError, SystemExit):
        return None


def test_the_commands_that_matter_for_speed_take_the_fast_path() -> None:
    names = {c.name for c in FAST}
    assert {"list", "start", "stop", "info", "console"} <= names, names


@pytest.mark.parametrize("command", FAST, ids=lambda c: c.name)
def test_fast_path_equals_argparse(command: Command) -> None:
    recorder = recorded(command)
    assert recorder is not None
    rng = random.Random(f"quickargs-{command.name}")
    answered = 0
    for _ in range(300):
        argv = _argv(recorder, rng)
        fast = quickargs.parse(recorder, argv)
        slow = _argparse(command, argv)
        if fast is None:
            continue
        answered += 1
        assert slow is not None, f"{command.name} {argv}: argparse refuses it, the fast path read {fast}"
        assert vars(fast) == slow, f"{command.name} {argv}"
    assert answered > 30, f"the fast path answered only {answered} of 300 lines of {command.name}"


@pytest.mark.parametrize("argv", [["list"], ["list", "--json"], ["list", "-r", "-t", "web"],
                                  ["start", "web1"], ["stop", "--timeout", "5", "a", "b"]])
def test_plain_lines_parse_without_argparse(argv: list[str]) -> None:
    command = resolve(argv[0])
    recorder = recorded(command)
    assert recorder is not None
    namespace = quickargs.parse(recorder, argv[1:])
    assert namespace is not None and vars(namespace) == _argparse(command, argv[1:])


def test_errors_and_help_still_come_from_argparse() -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        parse_command(resolve("list"), ["--bogus"])
    with pytest.raises(UsageError, match="the following arguments are required"):
        parse_command(resolve("start"), [])
    with pytest.raises(SystemExit):
        parse_command(resolve("list"), ["--help"])
