"""The modules of a package, imported: how the key table and the registries of device kinds and switch types
find their entries without a list to edit (docs/architecture.md, "Drivers, device kinds and switch types").

A directory listing of the package's ``__path__`` rather than ``pkgutil.iter_modules``: importing pkgutil
costs more than the whole scan, and every ``start`` reads the key table. Modules whose name starts with
``_`` (``__init__``) are skipped; the order is by name, so the caller sorts by what it means.
"""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import Callable, Iterable
from types import ModuleType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def submodules(package: str, path: Iterable[str]) -> list[ModuleType]:
    """Every ``*.py`` module directly in the directories ``path`` of ``package``, imported, sorted by name."""
    names: set[str] = set()
    for directory in path:
        try:
            entries = os.listdir(directory)
        except FileNotFoundError:
            continue
        names.update(entry[:-3] for entry in entries
                     if entry.endswith(".py") and not entry.startswith("_") and entry[:-3].isidentifier())
    return [importlib.import_module(f"{package}.{name}") for name in sorted(names)]


def entries(package: str, path: Iterable[str], attr: str, cls: type[T], order: Callable[[T], int],
            name: Callable[[T], str], what: str) -> tuple[T, ...]:
    """The ``attr`` (``KIND``, ``TYPE``) of every module of ``package`` that has one of type ``cls``, sorted
    by ``order``. Two entries with one order or one name would leave the order (the slot order of
    guests' devices) or a lookup to chance: refused, naming ``what`` they are."""
    found = [entry for module in submodules(package, path)
             if isinstance(entry := getattr(module, attr, None), cls)]
    found.sort(key=order)
    for first, second in itertools.pairwise(found):
        if order(first) == order(second):
            raise ValueError(f"{what} {name(first)} and {name(second)} have the same order {order(first)}")
    names = [name(e) for e in found]
    if len(set(names)) != len(names):
        raise ValueError(f"{what} need distinct names: {sorted(names)}")
    return tuple(found)
