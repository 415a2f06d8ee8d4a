"""``GET /1.0/whoami``: what the web UI's pages may show their caller (docs/web-ui.md).

The pages (``hivectl/daemon/static/index.html`` and ``app*.js``, served under ``/ui/`` by
``static_files``) show a button only when the caller may use it. They ask here: the caller's principal,
the role it holds on each resource path (the decision every request gets, through ``security.role_on``),
and the role and resource path each operation of the catalog needs (``hivectl/catalog.py``), so the page
keeps no table of its own. Hiding a button is a convenience; the daemon still checks every request.
The answer also carries the event log's newest sequence number, where a page starts following
``/1.0/events`` after reading the list. Like ``GET /1.0``, it reads nothing else and changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from hivectl import catalog
from hivectl.auth.model import check_path
from hivectl.daemon import envelope, security

PATHS = Query(None, description="resource paths to ask about (default: /, the kinds and every resource)")
PRINCIPAL = Depends(security.principal_of)


def _paths(request: Request) -> list[str]:
    """``/``, ``/guests`` (where a guest to be created inherits from) and every guest, switch and datastore."""
    from hivectl.api import Hivectl
    from hivectl.context import Context

    state = request.app.state
    hv = Hivectl(state.vm_dir, state.driver)
    found = ["/", "/guests", "/switches", "/datastores"]
    found += [f"/guests/{ref.name}" for ref in Context(state.driver, state.vm_dir).store.iter_guests()]
    found += [f"/switches/{row['name']}" for row in hv.switch_list()]
    found += [f"/datastores/{row['name']}" for row in hv.datastore_list()]
    return list(dict.fromkeys(found))


def router() -> APIRouter:
    """``/1.0/whoami`` (listed in hivectl/daemon/app.py's ROUTERS)."""
    api = APIRouter()

    @api.get("/1.0/whoami", operation_id="whoami", tags=["host"],
             response_model=envelope.Sync[dict[str, Any]],
             responses={400: {"model": envelope.Error}, 401: {"model": envelope.Error}})
    def whoami(request: Request, path: list[str] | None = PATHS, principal: Any = PRINCIPAL) -> JSONResponse:
        """Who the caller is, its role on each resource path (``null``: none), and the role and path each
        operation of the catalog needs: what a page needs to show only the actions the caller may run."""
        asked = [check_path("request", "path", p) for p in path] if path else _paths(request)
        roles = {p: security.role_on(request, principal, p) for p in asked}
        operations = {op.name: {"role": op.role, "path": op.path, "asynchronous": op.asynchronous}
                      for op in catalog.operations()}
        from hivectl.journal.query import events_log

        # The newest event's number: a page reads the list after it, then follows /1.0/events?since= it,
        # so no change between the two is missed and none of the retained history is replayed.
        seq = events_log(f"{request.app.state.root}/.config").last_seq()
        return JSONResponse({"type": "sync", "status": "Success", "status_code": 200, "metadata": {
            "principal": {"uid": principal.uid, "token_id": principal.token_id, "name": principal.name},
            "roles": roles, "operations": operations, "events_seq": seq}})

    return api
