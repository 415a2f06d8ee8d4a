"""``parse_text`` (one regular-expression scan, the fast path of ``list``) reads exactly as ``parse_line``.

``parse_line`` is the readable statement of vm-bhyve's reader (``lib/vm-config``); ``parse_text`` is
written for speed. Random files over the characters that matter (``#``, ``"``, ``=``, blanks, ``\\r``,
Unicode line breaks, upper case first letters) must give the same dict, in the same order.
"""

from __future__ import annotations

import random

from hivectl.rcfile import parse_line, parse_text

ALPHABET = ["a", "b", "k", "Z", "_", "0", "=", "#", '"', "'", " ", "\t", "\r", "\n", "\n", "\u2028", "\v", "x"]


def reference(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.split("\n"):
        found = parse_line(line)
        if found is not None and found[0] not in values:
            values[found[0]] = found[1]
    return values


def test_known_quirks() -> None:
    text = 'cpu=2\ncpu=4\nmemory="1G" # comment\n#x=1\nCpu=9\n a=1\nb = 2\nc="x "\nd="a"b"\ne\nf=#g\nh=1=2\r\n'
    assert parse_text(text) == reference(text) == {
        "cpu": "2", "memory": "1G", "b ": " 2", "c": "x ", "d": "ab", "f": "", "h": "1=2"}
    assert list(parse_text(text)) == list(reference(text))


def test_random_files_read_the_same_both_ways() -> None:
    rng = random.Random(9)
    for _ in range(3000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 60)))
        assert parse_text(text) == reference(text), repr(text)
        assert list(parse_text(text)) == list(reference(text)), repr(text)
