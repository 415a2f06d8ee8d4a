"""A fast path in front of argparse for plain command lines (``hivectl list``, ``hivectl start web1``).

Importing argparse (with the ``re``, ``gettext`` and ``enum`` it pulls in) costs more than ``hivectl list``'s
own work on a small host (benchmarks/README.md). A command's ``configure_<name>(parser)`` is therefore
first run against a ``Recorder``, which only notes the ``add_argument`` calls, and ``parse`` reads the
command line from those notes when it is plain: known options spelled exactly, one block of positionals,
values that do not start with ``-``. Anything else (``--help``, an abbreviation, ``--opt=value``, ``--``,
a sub-command, an error of any kind) returns None and the caller builds the real argparse parser, which
then decides, so errors and help text stay argparse's.

The result must be what argparse would return: same attributes, defaults, types and the positional
assignment of argparse's greedy matching. tests/cli/test_quickargs.py compares both on every command of
the table over generated command lines. The semantics followed are those of the Python standard library's
``Lib/argparse.py`` (``_get_values``, ``consume_positionals``, ``_match_arguments_partial``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_SUPPRESS = "==SUPPRESS=="  # argparse.SUPPRESS
_KNOWN_KEYS = frozenset({"action", "choices", "default", "dest", "help", "metavar", "nargs", "required", "type"})
_NARGS_MIN = {None: 1, "?": 0, "*": 0, "+": 1}


class Namespace:
    """The parsed arguments as attributes, like ``argparse.Namespace`` (equality included)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class Unsupported(Exception):
    """The command declares something this fast path does not read: use argparse."""


class _Argument:
    __slots__ = ("action", "choices", "default", "dest", "nargs", "options", "required", "type")

    def __init__(self, names: tuple[str, ...], kwargs: dict[str, object]) -> None:
        if set(kwargs) - _KNOWN_KEYS:
            raise Unsupported(f"add_argument keywords {sorted(set(kwargs) - _KNOWN_KEYS)}")
        action = kwargs.get("action", "store")
        nargs = kwargs.get("nargs")
        if action not in ("store", "store_true", "store_false") or kwargs.get("default") == _SUPPRESS:
            raise Unsupported(f"action {action!r}")
        self.options = tuple(n for n in names if n.startswith("-"))
        if self.options:
            if nargs is not None or len(self.options) != len(names):
                raise Unsupported("an option with nargs")
            longs = [o for o in self.options if o.startswith("--")]
            derived = (longs[0] if longs else self.options[0]).lstrip("-").replace("-", "_")
            dest = kwargs.get("dest", derived)
        else:
            if len(names) != 1 or "dest" in kwargs or nargs not in _NARGS_MIN or (
                    nargs == "*" and "choices" in kwargs):
                raise Unsupported("a positional of this shape")
            dest = names[0]
        self.dest = str(dest)
        self.action = str(action)
        self.nargs = nargs
        self.type: Callable[[str], object] | None = kwargs.get("type")  # type: ignore[assignment]
        self.choices = kwargs.get("choices")
        self.required = bool(kwargs.get("required", False))
        default = kwargs.get("default")
        self.default = {"store_true": False, "store_false": True}.get(self.action, default) \
            if "default" not in kwargs else default

    def convert(self, text: str) -> object:
        """``type(text)``, then the choices check (ValueError if the value is not among them)."""
        value = text if self.type is None else self.type(text)
        if self.choices is not None and value not in self.choices:  # type: ignore[operator]
            raise ValueError(value)
        return value


class Recorder:
    """Stands in for the ``ArgumentParser`` a ``configure_<name>`` function fills.

    ``add_argument`` is recorded; setting ``description``/``epilog``/``formatter_class`` is accepted and
    ignored; any other method (sub-commands, groups, ``set_defaults``) raises ``Unsupported``.
    """

    def __init__(self) -> None:
        self.arguments: list[_Argument] = []

    def add_argument(self, *names: str, **kwargs: object) -> None:
        self.arguments.append(_Argument(names, kwargs))

    def __getattr__(self, name: str) -> object:
        raise Unsupported(name)


def record(configure: Callable[[Recorder], None]) -> Recorder | None:
    """The recorded arguments of ``configure``, or None when it uses what ``parse`` does not read."""
    recorder = Recorder()
    try:
        configure(recorder)
    except Unsupported:
        return None
    return recorder


def _split(counts: list[int], total: int, specs: list[_Argument]) -> list[int] | None:
    """How many strings each positional takes: greedy from the left, as argparse's regular expression."""
    for spec in specs:
        taken = 0
        if spec.nargs is None:
            taken = 1
        else:
            rest = sum(_NARGS_MIN[s.nargs] for s in specs[len(counts) + 1 :])
            available = total - sum(counts) - rest
            taken = min(1, available) if spec.nargs == "?" else available
            if taken < _NARGS_MIN[spec.nargs]:
                return None
        counts.append(taken)
    return counts if sum(counts) == total else None


def parse(recorder: Recorder, argv: Sequence[str]) -> Namespace | None:
    """The namespace argparse would build from ``argv``, or None when argparse must decide."""
    by_option = {o: a for a in recorder.arguments for o in a.options}
    positionals = [a for a in recorder.arguments if not a.options]
    values: dict[str, object] = {}
    seen: set[str] = set()
    block: list[str] = []
    blocks = 0
    previous_was_positional = False
    index = 0
    try:
        while index < len(argv):
            word = argv[index]
            index += 1
            if not word.startswith("-"):
                if not previous_was_positional:
                    blocks += 1
                block.append(word)
                previous_was_positional = True
                continue
            previous_was_positional = False
            argument = by_option.get(word)
            if argument is None:
                return None
            seen.add(argument.dest)
            if argument.action == "store":
                if index >= len(argv) or argv[index].startswith("-"):
                    return None
                values[argument.dest] = argument.convert(argv[index])
                index += 1
            else:
                values[argument.dest] = argument.action == "store_true"
        if blocks > 1:
            return None
        counts = _split([], len(block), positionals)
        if counts is None:
            return None
        at = 0
        for spec, count in zip(positionals, counts, strict=True):
            words = block[at : at + count]
            at += count
            if spec.nargs is None:
                values[spec.dest] = spec.convert(words[0])
            elif spec.nargs == "?":
                if words:
                    values[spec.dest] = spec.convert(words[0])
                else:
                    values[spec.dest] = spec.convert(spec.default) if isinstance(spec.default, str) \
                        else spec.default
            elif not words and spec.nargs == "*" and spec.default is not None:
                values[spec.dest] = spec.default
            else:
                values[spec.dest] = [spec.convert(w) for w in words]
        for argument in recorder.arguments:
            if not argument.options or argument.dest in seen:
                continue
            if argument.required:
                return None
            default = argument.default
            values.setdefault(argument.dest, argument.convert(default) if isinstance(default, str) else default)
    except Exception:  # a type or choices check failed: argparse reports it in its own words
        return None
    return Namespace(**values)
