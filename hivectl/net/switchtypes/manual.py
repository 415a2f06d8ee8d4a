"""``manual``: an existing bridge the administrator made (``bridge_S``); hivectl only tags it and attaches
guests, and changes nothing else on it (vm-bhyve's ``lib/vm-switch-manual``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hivectl.errors import UsageError
from hivectl.net.switchtypes.base import SwitchType
from hivectl.plan import Action

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

    from hivectl.net.switches import Switch
    from hivectl.net.switchtypes.base import Planner


class Manual(SwitchType):
    name = "manual"
    order = 10
    has_bridge = True
    create_options = frozenset({"-b", "-p"})
    claims_existing_bridge = True

    def check_request(self, ports: tuple[str, ...], vlan: int | None, bridge: str) -> None:
        if not bridge:
            raise UsageError("a manual switch needs the existing bridge: -b BRIDGE")

    def check_editable(self, sw: Switch, what: str, platform: str) -> None:
        where = "in /etc/rc.conf" if platform == "freebsd" else "where the bridge is defined"
        raise UsageError(f"switch {sw.name} is manual: configure its {what} {where}")

    def iface(self, sw: Switch, planner: Planner) -> str:
        return sw.bridge

    def list_rows(self, r: Mapping[str, Any], text: Callable[[Any], str]) -> list[list[str]]:
        return [[r["name"], self.name, r["iface"], "n/a", text(r["private"]), "n/a", "n/a", "n/a"]]

    def bridge(self, sw: Switch, planner: Planner) -> str | None:
        return planner.existing_bridge(sw)

    def check_create(self, sw: Switch, planner: Planner) -> None:
        planner.check_manual_bridge(sw)
        if planner.platform == "linux":
            planner.check_ports(sw)

    def init(self, sw: Switch, planner: Planner) -> list[Action]:
        return planner.init_manual(sw)

    def destroy(self, sw: Switch, planner: Planner) -> list[Action]:
        return planner.destroy_manual(sw)


TYPE = Manual()
