"""Plain record classes, like ``@dataclass`` but cheap to define: the start path defines about 60.

Why not ``dataclasses``: importing it costs about 30 ms of CPU on the project's 2-core machine (it imports
``inspect``, ``ast``, ``dis``, ``tokenize``), and each ``@dataclass`` costs 1-2 ms more to build its class
(several generated methods, each compiled from source, plus ``inspect.signature``). ``hivectl start``
builds dozens of them before its hypervisor runs, against a 50 ms budget for the whole command
(issue 9.7; benchmarks/README.md, "start, third pass"). A ``@record`` compiles one ``__init__`` and
shares ``__repr__``, ``__eq__``, ``__hash__`` and the ordering methods between every record class.

What it supports is what hivectl uses of ``dataclasses``, with the same meaning: fields from the class's
annotations in order (``ClassVar`` excluded, fields of record base classes first), defaults, ``field(default=,
default_factory=, repr=, compare=)``, ``frozen=True`` (assignment raises ``FrozenInstanceError``, an
``AttributeError``; instances hash by their compared fields) and ``order=True``. As with ``dataclass``, a
non-frozen record compares by value and is unhashable. ``replace`` and ``fields`` work on records.
mypy reads ``record`` as a dataclass through PEP 681's ``dataclass_transform``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform, overload

    _T = TypeVar("_T")


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record (``dataclasses.FrozenInstanceError``'s meaning)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field of a record: its name and how it is made, shown and compared."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: object = MISSING, default_factory: Callable[[], object] | None = None,
                 repr: bool = True, compare: bool = True) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


if TYPE_CHECKING:
    @overload
    def field(*, default: _T, repr: bool = ..., compare: bool = ...) -> _T: ...

    @overload
    def field(*, default_factory: Callable[[], _T], repr: bool = ..., compare: bool = ...) -> _T: ...

    @overload
    def field(*, repr: bool = ..., compare: bool = ...) -> Any: ...

    def field(*, default: Any = MISSING, default_factory: Any = None, repr: bool = True,
              compare: bool = True) -> Any: ...
else:
    def field(*, default=MISSING, default_factory=None, repr=True, compare=True):
        """A field's default, default factory, and whether ``repr`` and ``==`` see it."""
        if default is not MISSING and default_factory is not None:
            raise ValueError("cannot specify both default and default_factory")
        return Field(default, default_factory, repr, compare)


def fields(obj: object) -> tuple[Field, ...]:
    """The fields of a record class or instance, in ``__init__`` order."""
    found: tuple[Field, ...] | None = getattr(obj, "__record_fields__", None)
    if found is None:
        raise TypeError(f"{obj!r} is not a record")
    return found


def replace(obj: _T, **changes: object) -> _T:
    """A copy of record ``obj`` with ``changes`` (``dataclasses.replace``)."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    values.update(changes)
    return type(obj)(**values)


def _repr(self: object) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _key(self: object) -> tuple[object, ...]:
    return tuple(getattr(self, f.name) for f in fields(self) if f.compare)


def _eq(self: object, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) == _key(other)


def _hash(self: object) -> int:
    return hash(_key(self))


def _lt(self: object, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) < _key(other)


def _le(self: object, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) <= _key(other)


def _gt(self: object, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) > _key(other)


def _ge(self: object, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) >= _key(other)


def _frozen_setattr(self: object, name: str, _value: object) -> None:
    if name in {f.name for f in fields(self)}:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    raise FrozenInstanceError(f"cannot assign to attribute {name!r} of a frozen record")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _init_source(made: list[Field], frozen: bool) -> str:
    """The source of ``__init__``: one assignment per field, as dataclasses' generated one does."""
    params, body = ["self"], []
    for number, item in enumerate(made):
        name = item.name
        if item.default_factory is not None:
            params.append(f"{name}=_MISSING")
            value = f"_factory{number}() if {name} is _MISSING else {name}"
        elif item.default is not MISSING:
            params.append(f"{name}=_default{number}")
            value = name
        else:
            params.append(name)
            value = name
        body.append(f"  _set(self, {name!r}, {value})" if frozen else f"  self.{name} = {value}")
    return f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "  pass") + "\n"


def _compiled_init(cls: type, made: list[Field], frozen: bool) -> Callable[..., None]:
    """``cls``'s real ``__init__``, compiled from ``_init_source``."""
    scope: dict[str, object] = {"_MISSING": MISSING, "_set": object.__setattr__}
    for number, item in enumerate(made):
        scope[f"_factory{number}"] = item.default_factory
        scope[f"_default{number}"] = item.default
    exec(_init_source(made, frozen), scope)  # noqa: S102 - our own generated source, field names only
    init: Any = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init  # type: ignore[no-any-return]


def _first_init(cls: type, made: list[Field], frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that compiles the real one on the first instance and puts it in its place: most
    record classes a command imports are never instantiated by it, so they never pay for the compile."""

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        init = _compiled_init(cls, made, frozen)
        cls.__init__ = init  # type: ignore[misc]
        init(self, *args, **kwargs)

    __init__.__record_compile__ = lambda: _compiled_init(cls, made, frozen)  # type: ignore[attr-defined]
    return __init__


def compile_now(cls: type) -> None:
    """Compile a record class's ``__init__`` now rather than on its first instance: for a process that
    forks a child per command (``hivectl zygote``), so that no child compiles it again."""
    pending = getattr(cls.__dict__.get("__init__"), "__record_compile__", None)
    if pending is not None:
        cls.__init__ = pending()  # type: ignore[misc]


def _build(cls: type, frozen: bool, order: bool) -> type:
    inherited: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited.update((f.name, f) for f in base.__dict__.get("__record_fields__", ()))
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - inspect is what this module avoids
    for name, annotation in own.items():
        if isinstance(annotation, str) and annotation.replace("typing.", "").startswith("ClassVar"):
            continue
        value = cls.__dict__.get(name, MISSING)
        item = value if isinstance(value, Field) else Field(value)
        item.name = name
        if isinstance(value, Field):
            if item.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, item.default)
        inherited[name] = item  # a redefined field keeps its inherited place, as in dataclasses
    made = list(inherited.values())
    seen_default = False
    for item in made:
        has_default = item.default is not MISSING or item.default_factory is not None
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {item.name!r} follows default argument")
        seen_default = seen_default or has_default
    cls.__record_fields__ = tuple(made)  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(f.name for f in made)  # type: ignore[attr-defined,misc]
    cls.__init__ = _first_init(cls, made, frozen)  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr  # type: ignore[assignment]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq  # type: ignore[assignment]
        cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    if order:
        cls.__lt__, cls.__le__, cls.__gt__, cls.__ge__ = _lt, _le, _gt, _ge  # type: ignore[operator]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
    return cls


if TYPE_CHECKING:
    @overload
    @dataclass_transform(field_specifiers=(field, Field))
    def record(cls: type[_T], /) -> type[_T]: ...

    @overload
    @dataclass_transform(field_specifiers=(field, Field))
    def record(*, frozen: bool = False, order: bool = False) -> Callable[[type[_T]], type[_T]]: ...

    @dataclass_transform(field_specifiers=(field, Field))
    def record(cls: Any = None, /, *, frozen: bool = False, order: bool = False) -> Any: ...
else:
    def record(cls=None, /, *, frozen=False, order=False):
        """Make ``cls`` a record: ``@record`` or ``@record(frozen=True, order=True)``."""
        if cls is None:
            return lambda klass: _build(klass, frozen, order)
        return _build(cls, frozen, order)
