"""Where each word of an imported command line came from, and BSD ``getopt(3)`` over those words.

Every refusal of ``hivectl import`` names the word it is about: ``argument 7: '-s 5,ahci-hd,...'``, with
``line N`` in front when the command line came from a script. Option parsing is getopt(3)'s, as bhyve(8)
and bhyveload(8) use it: flags may be grouped (``-AHP``), an option's argument may be attached (``-m4G``)
or the next word, and options end at the first word that is not one (FreeBSD's getopt never reorders).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hivectl.errors import HivectlError


@dataclass(frozen=True)
class Where:
    """One option or operand of a command line: its argument number (the program is argument 0) and text."""

    index: int
    text: str
    line: int | None = None  # the script line the command starts on
    source: str = ""  # a file the value was read from (bhyve -k), shown instead of the argument

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line is not None else ""
        if self.line is not None and self.index == 0 and not self.source:
            return f"line {self.line}: {self.text!r}"
        if self.source:
            return f"{where}{self.source}"
        return f"{where}argument {self.index}: {self.text!r}"


class ImportRefused(HivectlError):
    """A part of the command line hivectl cannot represent (or that would not run): position, text, why."""

    def __init__(self, where: Where | None, why: str) -> None:
        self.where = where
        self.why = why
        super().__init__(f"{where}: {why}" if where is not None else why)


@dataclass(frozen=True)
class Option:
    letter: str
    value: str | None
    where: Where


@dataclass(frozen=True)
class Parsed:
    program: str
    options: list[Option]
    operands: list[tuple[str, Where]]


def getopt(argv: Sequence[str], optstring: str, line: int | None = None) -> Parsed:
    """Split ``argv`` (program first) like BSD getopt(3) with ``optstring``; refuse what getopt refuses."""
    if not argv:
        raise ImportRefused(None, "the command line is empty")
    takes = {c for i, c in enumerate(optstring) if c != ":" and optstring[i + 1:i + 2] == ":"}
    flags = {c for c in optstring if c != ":"}
    options: list[Option] = []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        j = 1
        while j < len(word):
            letter = word[j]
            if letter not in flags:
                raise ImportRefused(Where(i, word, line), f"{argv[0]} has no option -{letter} "
                                                          f"({argv[0]} would print its usage and exit)")
            if letter in takes:
                if j + 1 < len(word):
                    options.append(Option(letter, word[j + 1:], Where(i, word, line)))
                elif i + 1 < len(argv):
                    options.append(Option(letter, argv[i + 1], Where(i, f"{word} {argv[i + 1]}", line)))
                    i += 1
                else:
                    raise ImportRefused(Where(i, word, line), f"-{letter} needs an argument")
                break
            options.append(Option(letter, None, Where(i, word, line)))
            j += 1
        i += 1
    operands = [(argv[k], Where(k, argv[k], line)) for k in range(i, len(argv))]
    return Parsed(argv[0], options, operands)


def program_name(word: str) -> str:
    """``/usr/sbin/bhyve`` → ``bhyve``: the tool a command line runs."""
    return word.rsplit("/", 1)[-1]
