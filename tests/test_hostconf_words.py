"""hivectl/hostconf.py reads rc.conf values without shlex when it can: the result must be shlex's.

``first_word`` answers the common spellings itself (a plain word, one single- or double-quoted word) and
hands everything else to ``shlex.split(value, comments=True, posix=True)``, which is how rc.conf values
were always read. Random values over an alphabet of sh's special characters are compared with shlex.
"""

from __future__ import annotations

import random
import shlex

import pytest

from hivectl.hostconf import first_word, read_shell_assignments

ALPHABET = ['"', "'", "\\", "#", " ", "\t", "\r", "a", "b", "/", "$", "=", ":", "é", "\u00a0", "x y"]


def by_shlex(value: str) -> str | None:
    try:
        words = shlex.split(value, comments=True, posix=True)
    except ValueError:
        return None
    return words[0] if words else ""


@pytest.mark.parametrize("value", ['"/vm"', "YES", "'a b'", '"zfs:zroot/vm"', "", '""', '"a" # c', "a#b",
                                   '"a\\"b"', '"a"b', "'a'\"b\"", '"unclosed', "  spaced  ", '"a" "b"'])
def test_known_spellings(value: str) -> None:
    assert first_word(value) == by_shlex(value)


def test_random_values_read_as_shlex_reads_them() -> None:
    rng = random.Random("hostconf-words")
    for _ in range(20000):
        value = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(8)))
        assert first_word(value) == by_shlex(value), repr(value)


def test_assignment_lines(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    rc = tmp_path / "rc.conf"
    rc.write_text('  vm_dir="/vm"\nvm_list="a b" # c\n1bad=x\nvm-x=1\nvm_delay=5\nvm_delay=7\n'
                  "cloned_interfaces='bridge0 tap0'\n=x\n")
    assert read_shell_assignments(rc) == {"vm_dir": "/vm", "vm_list": "a b", "vm_delay": "7",
                                          "cloned_interfaces": "bridge0 tap0"}
