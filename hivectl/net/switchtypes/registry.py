"""Every switch type, found in this package and listed in the order ``switch create -t`` shows them
(vm-bhyve's types, ``lib/vm-switch-*``). A type is a module of this package with ``TYPE``; ``discover``
sorts them by ``order`` (switchtypes/base.py), so a new type adds no line here.
"""

from __future__ import annotations

import sys

from hivectl.model.modules import entries
from hivectl.net.switchtypes.base import SwitchType

_PACKAGE = __name__.rpartition(".")[0]


def discover() -> tuple[SwitchType, ...]:
    """The ``TYPE`` of every module of the package (helpers have none), in ``order``; two types with one
    name or one ``order`` are refused."""
    return entries(_PACKAGE, sys.modules[_PACKAGE].__path__, "TYPE", SwitchType, lambda t: t.order,
                   lambda t: t.name, "switch types")


TYPES: tuple[SwitchType, ...] = discover()
NAMES = tuple(t.name for t in TYPES)
DEFAULT = TYPES[0].name  # standard (order 0): vm-bhyve's default type (vm.8, switch create)


def get(name: str) -> SwitchType:
    """The type called ``name`` (already validated against ``NAMES``)."""
    for kind in TYPES:
        if kind.name == name:
            return kind
    raise KeyError(name)
