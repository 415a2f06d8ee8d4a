"""Every switch type, in the order ``switch create -t`` lists them (vm-bhyve's types, ``lib/vm-switch-*``)."""

from __future__ import annotations

from hivectl.net.switchtypes import manual, netgraph, standard, vale, vxlan
from hivectl.net.switchtypes.base import SwitchType

TYPES: tuple[SwitchType, ...] = (standard.TYPE, manual.TYPE, vale.TYPE, netgraph.TYPE, vxlan.TYPE)
NAMES = tuple(t.name for t in TYPES)
DEFAULT = standard.TYPE.name


def get(name: str) -> SwitchType:
    """The type called ``name`` (already validated against ``NAMES``)."""
    for kind in TYPES:
        if kind.name == name:
            return kind
    raise KeyError(name)
