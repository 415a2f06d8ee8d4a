"""The line breaks no value may hold, and the command line's edge check, without importing ``re``.

Split from ``hivectl/safety/values.py`` (which re-exports both) because every command runs
``argv_words`` before anything else, ``hivectl list`` included, and that module's regular expressions
and ``pathlib`` cost more start-up time than ``list``'s own work on a small host (benchmarks/README.md).
"""

from __future__ import annotations

from hivectl.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Sequence

# Every character str.splitlines() breaks at, plus NUL.
LINE_BREAKS = {"\0": "a NUL byte", "\n": "a newline", "\r": "a carriage return", "\x0b": "a vertical tab",
               "\x0c": "a form feed", "\x1c": "a file separator (U+001C)", "\x1d": "a group separator (U+001D)",
               "\x1e": "a record separator (U+001E)", "\x85": "a next-line character (U+0085)",
               "\u2028": "a line separator (U+2028)", "\u2029": "a paragraph separator (U+2029)"}


def first_break(value: str) -> str | None:
    """The first character of ``value`` that is a NUL or a line break (see LINE_BREAKS), or None."""
    found = [(value.index(char), char) for char in LINE_BREAKS if char in value]
    return min(found)[1] if found else None


def argv_words(words: Sequence[str]) -> None:
    """The CLI's edge check: every argument one line of valid text (usage error, exit 2, otherwise).

    A NUL cannot reach any program hivectl runs (execve(2) ends a word there) and a line break would make
    a value mean different keys to hivectl and to vm-bhyve's sh reader (see hivectl/safety/values.py). Bytes
    that are not UTF-8 arrive as lone surrogates (PEP 383) and could not be written to any config file:
    strict UTF-8 encoding refuses exactly those.
    """
    for index, word in enumerate(words, 1):
        bad = first_break(word)
        if bad is not None:
            raise UsageError(f"command line: argument {index} {word!r}: arguments cannot contain "
                             f"{LINE_BREAKS[bad]}")
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"command line: argument {index} {word!r}: arguments must be valid UTF-8 "
                             "text") from None
