"""``vxlan``: a bridge joined to a VXLAN interface (VNI in ``vlan_S``) over the parent interface in
``ports_S`` (vm-bhyve's ``lib/vm-switch-vxlan``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hivectl.errors import UsageError
from hivectl.net import names
from hivectl.net.switchtypes.base import SwitchType, bridged_rows
from hivectl.plan import Action

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

    from hivectl.net.switches import Switch
    from hivectl.net.switchtypes.base import Planner


class Vxlan(SwitchType):
    name = "vxlan"
    order = 40
    has_bridge = True
    create_options = frozenset({"-i", "-n", "-m", "-a", "-p"})

    def check_request(self, ports: tuple[str, ...], vlan: int | None, bridge: str) -> None:
        if not ports or not vlan:
            raise UsageError("a vxlan switch needs the parent interface (-i) and a VNI from 1 to 4094 (-n)")

    def list_rows(self, r: Mapping[str, Any], text: Callable[[Any], str]) -> list[list[str]]:
        return bridged_rows(self.name, r, text, mtu="n/a" if r["mtu"] is None else text(r["mtu"]))

    def bridge(self, sw: Switch, planner: Planner) -> str | None:
        return planner.own_bridge(sw)

    def wanted_members(self, sw: Switch) -> list[str]:
        return [names.vxlan_interface(sw.vlan)] if sw.vlan is not None else []

    def check_create(self, sw: Switch, planner: Planner) -> None:
        planner.check_vxlan_parent(sw)

    def init(self, sw: Switch, planner: Planner) -> list[Action]:
        return planner.init_vxlan(sw)

    def destroy(self, sw: Switch, planner: Planner) -> list[Action]:
        return planner.destroy_vxlan(sw)


TYPE = Vxlan()
