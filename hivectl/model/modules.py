"""The modules of a package, imported: how the key table and the registries of device kinds and switch types
find their entries without a list to edit (docs/architecture.md, "Drivers, device kinds and switch types").

A directory listing of the package's ``__path__`` rather than ``pkgutil.iter_modules``: importing pkgutil
costs more than the whole scan, and every ``start`` reads the key table. Modules whose name starts with
``_`` (``__init__``) are skipped; the order is by name, so the caller sorts by what it means.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from types import ModuleType


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
