"""``standard``: a bridge hivectl creates (``vm-NAME``), with physical ports, an optional VLAN on them, an
address, MTU, private mode and NAT (vm-bhyve's ``lib/vm-switch-standard``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hivectl.net import names
from hivectl.net.switchtypes.base import SwitchType, bridged_rows
from hivectl.plan import Action

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

    from hivectl.net.switches import Switch
    from hivectl.net.switchtypes.base import Planner


class Standard(SwitchType):
    name = "standard"
    order = 0
    has_bridge = True
    create_options = frozenset({"-i", "-n", "-m", "-a", "-p", "--nat"})

    def check_editable(self, sw: Switch, what: str, platform: str) -> None:
        return None

    def list_rows(self, r: Mapping[str, Any], text: Callable[[Any], str]) -> list[list[str]]:
        return bridged_rows(self.name, r, text, mtu=text(r["mtu"]))

    def bridge(self, sw: Switch, planner: Planner) -> str | None:
        return planner.own_bridge(sw)

    def wanted_members(self, sw: Switch) -> list[str]:
        return [names.vlan_child(p, sw.vlan) if sw.vlan else p for p in sw.ports]

    def check_create(self, sw: Switch, planner: Planner) -> None:
        planner.check_ports(sw)

    def init(self, sw: Switch, planner: Planner) -> list[Action]:
        return planner.init_standard(sw)

    def destroy(self, sw: Switch, planner: Planner) -> list[Action]:
        return planner.destroy_standard(sw)


TYPE = Standard()
