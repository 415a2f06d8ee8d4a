"""contrib/grafana/hivectl.json: valid JSON whose every query names only metrics hivectl exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hivectl.metrics import exposition
from tests.metrics.test_exposition import full_snapshot

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "hivectl.json"


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        query = node.get("query")
        if isinstance(query, dict) and isinstance(query.get("query"), str):
            found.append(query["query"])
        return found + [e for value in node.values() for e in expressions(value)]
    if isinstance(node, list):
        return [e for value in node for e in expressions(value)]
    return []


def test_every_query_uses_exposed_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = expressions(dashboard)
    assert len(exprs) >= 15
    exposed = {f.name + ("_total" if f.kind == "counter" else "") for f in exposition.families(full_snapshot())}
    used = {name for expr in exprs for name in re.findall(r"\bhivectl_[a-z_]+", expr)}
    assert used - exposed == set(), "the dashboard queries metrics hivectl does not expose"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
