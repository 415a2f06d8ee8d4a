"""``list --json`` writes its rows without importing json when it can: the text must be json.dumps's."""

from __future__ import annotations

import io
import json
import random

from hivectl.cli import render

ALPHABET = ["a", "Z", "0", " ", '"', "\\", "\n", "\t", "\x00", "\x7f", "é", "€", "\U0001f600", "\udcff", "/", ":"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(6)))


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randrange(-5, 70000)
    if kind in (3, 4):
        return _text(rng)
    if kind == 5:
        return 1.5
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_rows_are_written_as_json_dumps_writes_them() -> None:
    rng = random.Random("render-json")
    for _ in range(300):
        rows = [{_text(rng): _value(rng) for _ in range(rng.randrange(6))} for _ in range(rng.randrange(4))]
        out = io.StringIO()
        render.json_rows(rows, out)
        expected = ("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n") if rows else "[]\n"
        assert out.getvalue() == expected
        assert json.loads(out.getvalue()) == json.loads(expected)


def test_a_list_row_is_written_without_json() -> None:
    row = {"name": "web1", "vnc": None, "auto": True, "auto_order": 2, "pid": 4321, "tags": ["a", "b"], "x": []}
    assert render._json_value(row) == json.dumps(row)
