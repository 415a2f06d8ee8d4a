"""Finding the bhyve command line (and the loader line before it) in a shell script, without running it.

What is supported, exactly (docs/import.md):

- literal command lines whose first word is ``bhyve``, ``bhyveload`` or ``grub-bhyve`` (any directory in
  front, e.g. ``/usr/sbin/bhyve``), optionally after ``exec`` and with a final ``&``; words are split and
  quoted as sh(1) does;
- line continuations (a backslash at the end of a line) and comments (``#`` starting a word);
- simple variable assignments earlier in the script, at the top level (not inside ``if``/``case``/loops/
  functions): ``NAME=value``, where the value is one word of literal text and ``$OTHER``/``${OTHER}`` of
  variables assigned the same way; their uses in those command lines are substituted.

Everything else on a command line we read is refused with its line number: a variable that is not
assigned so (positional parameters, ``$(...)``, backticks, arithmetic, a variable set inside a conditional
or loop, ``${X:-default}``), pipes, ``;``, ``&&``, redirections and unquoted globs. Other lines of the
script are skipped. With several bhyve command lines, ``--line N`` picks one.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from hivectl.errors import UsageError
from hivectl.importer.words import ImportRefused, Where, program_name

TOOLS = ("bhyve", "bhyveload", "grub-bhyve")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_OPENERS = {"if", "case", "for", "while", "until", "select", "{"}
_CLOSERS = {"fi", "esac", "done", "}"}


@dataclass
class Found:
    bhyve: list[str]
    bhyve_line: int
    loader: list[str] | None
    loader_line: int | None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash-newline continuations joined."""
    result: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.split("\n"), 1):
        if not pending:
            start = number
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending += raw[:-1]
            continue
        result.append((start, pending + raw))
        pending = ""
    if pending:
        result.append((start, pending))
    return result


def _dynamic(number: int, text: str, why: str) -> ImportRefused:
    return ImportRefused(Where(0, text.strip(), number), why)


Variables = dict[str, str | tuple[int, str]]  # a value, or where and why it is not known


def _substitute(word: str, variables: Variables, number: int, line: str) -> str:
    """``$X`` and ``${X}`` of simple assignments; anything else dynamic is refused."""
    for bad, what in (("$((", "arithmetic"), ("$(", "command substitution"), ("`", "command substitution")):
        if bad in word:
            raise _dynamic(number, line, f"{what} ({word!r}) is not read: only literal words and simple variables")

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = variables.get(name)
        if found is None:
            raise _dynamic(number, line, f"${name} is not assigned a literal value earlier in the script")
        if isinstance(found, tuple):
            raise _dynamic(number, line, f"${name} is set on line {found[0]} {found[1]}: its value is not known "
                                         "without running the script")
        return found

    result = _VAR.sub(value, word)
    if "$" in result.replace("\\$", ""):
        raise _dynamic(number, line, f"{word!r}: only $NAME and ${{NAME}} of simple assignments are substituted")
    return result


def _split(line: str, number: int) -> list[str]:
    for bad, what in (("$((", "arithmetic"), ("$(", "command substitution"), ("`", "command substitution")):
        if bad in line:
            raise _dynamic(number, line, f"{what} is not read: only literal words and simple variables")
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError as error:
        raise _dynamic(number, line, f"cannot be split into words: {error}") from None
    if words and words[-1] == "&":
        words.pop()  # run in the background: the command line is the same
    for word in words:
        if word and set(word) <= set(";&|<>()"):
            raise _dynamic(number, line, f"{word!r}: pipes, lists and redirections are not read; put the command "
                                         "on a line of its own")
    return words


def _nesting(line: str) -> int:
    """What a line opens (``if``, ``case``, loops, ``{``) minus what it closes (``fi``, ``esac``, ``done``, ``}``)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = line.split()
    return sum(1 for t in tokens if t in _OPENERS) - sum(1 for t in tokens if t in _CLOSERS)


def find(text: str, source: str, pick: int | None = None) -> Found:
    """The bhyve command (the one starting on line ``pick``, if given) and the loader command before it."""
    variables: Variables = {}
    depth = 0
    commands: list[tuple[int, list[str], str]] = []  # line, words, tool
    for number, line in _logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assignment = _ASSIGN.fullmatch(stripped)
        if assignment:
            name, raw_value = assignment.groups()
            try:
                parts = shlex.split(raw_value, comments=True)
            except ValueError:
                parts = ["", ""]
            if depth:
                variables[name] = (number, "inside a conditional, loop or function")
            elif len(parts) > 1 or "$(" in raw_value or "`" in raw_value:
                variables[name] = (number, "from a command or to more than one word")
            else:
                try:
                    variables[name] = _substitute(parts[0] if parts else "", variables, number, line)
                except ImportRefused:
                    variables[name] = (number, "from a value that is not known (a parameter or another variable)")
            continue
        words_raw = stripped.split()
        tool_words = words_raw[1:] if words_raw[0] == "exec" else words_raw
        if tool_words and program_name(tool_words[0]) in TOOLS:
            words = _split(stripped, number)
            if words and words[0] == "exec":
                words = words[1:]
            commands.append((number, [_substitute(w, variables, number, line) for w in words],
                             program_name(words[0])))
        depth = max(0, depth + _nesting(stripped))
    runs = [c for c in commands if c[2] == "bhyve"]
    if pick is not None:
        runs = [c for c in runs if c[0] == pick]
        if not runs:
            raise UsageError(f"{source}: line {pick} is not a bhyve command line")
    if not runs:
        raise UsageError(f"{source}: no bhyve command line found (a line whose first word is bhyve)")
    if len(runs) > 1:
        lines = ", ".join(str(c[0]) for c in runs)
        raise UsageError(f"{source}: several bhyve command lines (lines {lines}); pick one with --line N")
    number, words, _ = runs[0]
    before = [c for c in commands if c[0] < number and c[2] != "bhyve"]
    loader = before[-1] if before else None
    return Found(words, number, loader[1] if loader else None, loader[0] if loader else None)
