"""Rendering for humans (aligned tables, YAML) and for programs (JSON). No logic lives here."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (``list`` renders without it)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, TextIO


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], out: TextIO | None = None) -> None:
    """Columns aligned like ``column -t`` (two spaces between columns), as vm-bhyve prints them.

    Widths come from one ``max(map(len, column))`` per column and every line from one format string:
    ``list`` prints a thousand rows (benchmarks/README.md).
    """
    out = out or sys.stdout
    text_rows = [list(headers), *([str(c) for c in row] for row in rows)]
    widths = [max(map(len, column)) for column in zip(*text_rows, strict=True)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    out.write("".join(line.format(*row).rstrip() + "\n" for row in text_rows))


def as_json(data: Any, out: TextIO | None = None) -> None:
    import json  # here and in json_rows, not at the top: a table (``list``) should not pay for it

    (out or sys.stdout).write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _json_value(value: object) -> str:
    """``json.dumps(value)`` for the plain values of ``list`` rows, importing json only when needed.

    Strings of printable ASCII without ``"`` or ``\\`` (names, sizes, states) are their own JSON text;
    anything else (escapes, non-ASCII, other types) is left to ``json.dumps`` itself, so the output is
    byte for byte json's (tests/cli/test_render_json.py). ``list --json`` then pays no json import.
    """
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
    elif value is None:
        return "null"
    elif value is True:
        return "true"
    elif value is False:
        return "false"
    elif type(value) is int:
        return str(value)
    elif type(value) is list:
        return "[" + ", ".join(map(_json_value, value)) + "]"
    elif type(value) is dict and all(type(k) is str for k in value):
        return "{" + ", ".join(f"{_json_value(k)}: {_json_value(v)}" for k, v in value.items()) + "}"
    import json

    return json.dumps(value)


def json_rows(rows: list[dict[str, Any]], out: TextIO | None = None) -> None:
    """A JSON array with one object per line: valid JSON, greppable, and fast for thousands of rows."""
    body = ",\n".join(map(_json_value, rows))
    (out or sys.stdout).write(f"[\n{body}\n]\n" if rows else "[]\n")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    import json

    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def yaml(data: Any, indent: int = 0) -> str:
    """A small, always-valid YAML emitter for nested dicts and lists of scalars (vm-bhyve#79)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        if not data:
            return pad + "{}"
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{key}:")
                lines.append(yaml(value, indent + 1))
            elif isinstance(value, dict | list):
                lines.append(f"{pad}{key}: {'{}' if isinstance(value, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict | list) and item:
                nested = yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {nested}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(data))
    return "\n".join(lines)


def plan_lines(lines: Iterable[str], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for line in lines:
        out.write(line + "\n")
