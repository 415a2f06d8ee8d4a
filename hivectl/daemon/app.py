"""The hivectld application: the catalog's endpoints, the operations endpoints, and the others' routers.

``ROUTERS`` is the one place routers are included: each entry is ``"module:function"`` returning an
``APIRouter`` (the events, audit and metrics helpers each add one line). A listed module that is not
there yet is skipped with a warning, so a half-landed router never keeps the daemon from starting.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hivectl import __version__, catalog
from hivectl.daemon import envelope, security
from hivectl.daemon.listcache import ListCache
from hivectl.daemon.operations import OperationManager
from hivectl.daemon.routes import asynchronous, sync
from hivectl.errors import HivectlError

log = logging.getLogger("hivectld")

# Routers included in the application, in order: "module:function" returning an APIRouter.
ROUTERS: list[str] = [
    "hivectl.daemon.routes_events:router",  # websocket/SSE /1.0/events (before the catalog's GET /1.0/events)
    "hivectl.daemon.routes:router",  # every catalog operation under /1.0
    "hivectl.daemon.app:operations_router",  # /1.0/operations
    "hivectl.daemon.routes_metrics:router",  # /metrics (Prometheus text, docs/metrics.md)
    "hivectl.daemon.routes_console:router",  # console tickets and websockets (docs/api.md, "The consoles")
    "hivectl.daemon.routes_ui:router",  # /1.0/whoami: what the web UI may show its caller (docs/web-ui.md)
]

MAX_WAIT = 3600.0  # seconds a /wait may block
PRINCIPAL = Depends(security.principal_of)  # who is calling: run for every request (security.py)


def operations_router() -> APIRouter:
    """``/1.0/operations``: list, show, wait on and cancel background operations."""
    api = APIRouter(prefix="/1.0/operations", tags=["operations"])
    errors: dict[int | str, dict[str, Any]] = {404: {"model": envelope.Error}, 409: {"model": envelope.Error}}

    def visible(request: Request, principal: Any, record: Any, role: str = "viewer") -> None:
        for paths in record.resources.values() or [["/1.0/"]]:
            for path in paths:
                security.authorize(request, principal, role, path.removeprefix("/1.0") or "/")
        if not record.resources:
            security.authorize(request, principal, role, "/")

    @api.get("", response_model=envelope.Sync[list[envelope.OperationInfo]], operation_id="operations")
    def list_operations(request: Request, principal: Any = PRINCIPAL) -> JSONResponse:
        """Every operation this daemon knows (running, queued and the recently finished), oldest first."""
        shown = []
        for record in request.app.state.operations.all():
            try:
                visible(request, principal, record)
            except HivectlError:
                continue
            shown.append(record.info().model_dump(by_alias=True))
        return sync(shown)

    @api.get("/{op_id}", response_model=envelope.Sync[envelope.OperationInfo], responses=errors,
             operation_id="operation")
    def show(op_id: str, request: Request, principal: Any = PRINCIPAL) -> JSONResponse:
        """One operation: its status, progress and, once finished, its result or error."""
        record = request.app.state.operations.get(op_id)
        visible(request, principal, record)
        return sync(record.info().model_dump(by_alias=True))

    @api.get("/{op_id}/wait", response_model=envelope.Sync[envelope.OperationInfo], responses=errors,
             operation_id="operation_wait")
    def wait(op_id: str, request: Request, timeout: float = Query(-1.0, description="seconds; -1: until done"),
             principal: Any = PRINCIPAL) -> JSONResponse:
        """The operation once it finished, or as it is after ``timeout`` seconds."""
        manager = request.app.state.operations
        visible(request, principal, manager.get(op_id))
        limit = MAX_WAIT if timeout < 0 else min(timeout, MAX_WAIT)
        return sync(manager.wait(op_id, limit).info().model_dump(by_alias=True))

    @api.delete("/{op_id}", response_model=envelope.Sync[envelope.OperationInfo], responses=errors,
                operation_id="operation_cancel")
    def cancel(op_id: str, request: Request, principal: Any = PRINCIPAL) -> JSONResponse:
        """Cancel an operation: at once if queued, at its next step if running (its plan then rolls back)."""
        manager = request.app.state.operations
        record = manager.get(op_id)
        visible(request, principal, record, catalog.get(record.name).role)
        return sync(manager.cancel(op_id).info().model_dump(by_alias=True))

    return api


def _include(app: FastAPI, spec: str) -> None:
    module_name, _, function = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            log.warning("router %s is not installed: skipped", spec)
            return
        raise
    app.include_router(getattr(module, function)())


def create_app(vm_dir: str | Path | None = None, driver: str | None = None, workers: int = 4) -> FastAPI:
    """The application for one vm_dir (``None``: the one rc.conf names, as the CLI finds it)."""
    from hivectl.context import Context
    from hivectl.hostconf import load_settings

    resolved = str(load_settings(str(vm_dir) if vm_dir is not None else None).vm_dir)
    # The directory vm_dir is (a ZFS vm_dir ``zfs:pool/vm`` is its dataset's mountpoint): its .config holds
    # the tokens, the ACL and the journal, exactly where the CLI finds them (Store.root).
    root = Context(driver, resolved).store.root
    operations = OperationManager(workers=workers)
    from hivectl.daemon.routes_events import operation_events  # each operation's progress: an event

    operations.listeners.append(operation_events(str(root)))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from hivectl.replicate.scheduler import running  # replication jobs (docs/replication.md)

        with running(resolved, driver):
            yield
        operations.shutdown()
        _app.state.list_cache.close()

    app = FastAPI(title="hivectld", version=__version__, openapi_url="/1.0/openapi.json", docs_url=None,
                  redoc_url=None, lifespan=lifespan,
                  description="hivectl's REST API: every operation of hivectl.api (docs/api.md).")
    app.state.vm_dir = resolved
    app.state.root = root
    app.state.driver = driver
    app.state.operations = operations
    app.state.list_cache = ListCache(Path(root) / ".config")

    @app.exception_handler(HivectlError)
    async def hivectl_error(_request: Request, error: HivectlError) -> JSONResponse:
        status, body = envelope.error_body(error)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in error.errors())
        return JSONResponse(envelope.Error(error_code=400, error=f"invalid request: {problems}",
                                           code="invalid").model_dump(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "invalid")
        return JSONResponse(envelope.Error(error_code=error.status_code, error=str(error.detail),
                                           code=code).model_dump(), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def internal(_request: Request, error: Exception) -> JSONResponse:
        log.error("internal error", exc_info=error)
        status, body = envelope.error_body(error)
        return JSONResponse(body, status_code=status)

    @app.get("/", operation_id="api_versions", response_model=envelope.Sync[list[str]], tags=["host"])
    def versions() -> JSONResponse:
        """The API versions this daemon serves."""
        return sync(["/1.0"])

    @app.get("/1.0", operation_id="server", response_model=envelope.Sync[dict[str, Any]], tags=["host"])
    def server(request: Request, principal: Any = PRINCIPAL) -> JSONResponse:
        """The daemon: API version, hivectl version, who the caller is."""
        return sync({"api_version": "1.0", "version": __version__, "vm_dir": request.app.state.vm_dir,
                     "principal": {"uid": principal.uid, "token_id": principal.token_id, "name": principal.name}})

    for spec in ROUTERS:
        _include(app, spec)
    from hivectl.daemon import static_files

    static_files.mount(app)  # the web pages under /ui/ (after every route: the API wins)

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, without the 422 answers it documents: this API answers a request that fails
        validation with 400 and the error envelope (``invalid`` above), which the schema says instead; and
        every operation's ``default`` answer is the error envelope (any status not listed is an error)."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            for methods in schema.get("paths", {}).values():
                for spec in methods.values():
                    responses = spec.setdefault("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault("400", {"description": "Bad Request", "content": error})
                    responses["default"] = {"description": "An error (docs/api.md)", "content": error}
            schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = \
                envelope.Error.model_json_schema()
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    _ = asynchronous  # re-exported for the routers of others (routes.asynchronous answers 202)
    return app
