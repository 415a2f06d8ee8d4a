"""The ``/1.0`` endpoints, one per catalog operation, generated from ``hivectl.catalog``.

Paths are REST-shaped and follow from the operation's resource (``catalog.Operation.path``) and name:
an operation on a guest is ``/1.0/guests/{name}/<action>`` (``start`` → ``POST /1.0/guests/{name}/start``,
``tags_add`` → ``POST /1.0/guests/{name}/tags/add``), on a switch or datastore the same under
``/switches``/``/datastores`` with the prefix dropped, a host-wide one ``/1.0/<action>``. Reads are
``GET``, changes ``POST``; ``SPECIAL`` gives the collections and the documents their usual verbs
(``GET /1.0/guests``, ``DELETE /1.0/guests/{name}``, ``PATCH /1.0/settings``...).

Arguments: the path's placeholder fills its parameter (a one-element list for ``stop``'s ``names``);
``GET`` and ``DELETE`` take the others as query parameters, the other verbs as a JSON body whose model is
generated from the method's signature (unknown fields refused), and every changing operation takes
``?dry_run=1``, which answers with the plan's argv lists. The OpenAPI schema is FastAPI's, from these
models and from the result type of each method.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, create_model

from hivectl import catalog
from hivectl.api import Hivectl
from hivectl.daemon import envelope, security
from hivectl.daemon.steps import CancelToken, SteppedHost
from hivectl.errors import HIDDEN, SECRET_KEYS, HivectlError

log = logging.getLogger("hivectld.api")

# (verb, path under /1.0) where the rule below would not give the usual REST shape.
SPECIAL: dict[str, tuple[str, str]] = {
    "guests": ("GET", "/guests"), "info": ("GET", "/guests/{name}"), "create": ("POST", "/guests"),
    "destroy": ("DELETE", "/guests/{name}"), "set": ("PATCH", "/guests/{name}"),
    "config_text": ("GET", "/guests/{name}/config"), "configure": ("PUT", "/guests/{name}/config"),
    "tags_list": ("GET", "/guests/{name}/tags"), "disk_list": ("GET", "/guests/{name}/disks"),
    "import_guest": ("POST", "/guests/import"), "tags_find": ("GET", "/tags/{tag}"),
    "switch_list": ("GET", "/switches"), "switch_create": ("POST", "/switches"),
    "switch_info": ("GET", "/switches/{name}"), "switch_init": ("POST", "/switches/init"),
    "switch_destroy": ("DELETE", "/switches/{name}"),
    "switch_forward_list": ("GET", "/switches/{name}/forwards"),
    "datastore_list": ("GET", "/datastores"), "datastore_add": ("POST", "/datastores"),
    "datastore_remove": ("DELETE", "/datastores/{name}"),
    "settings": ("GET", "/settings"), "set_settings": ("PATCH", "/settings"),
    "templates": ("GET", "/templates"), "template_show": ("GET", "/templates/{name}"),
    "image_list": ("GET", "/images"), "image_provision": ("POST", "/images/{uuid}/provision"),
    "image_destroy": ("DELETE", "/images/{uuid}"),
    "iso_list": ("GET", "/isos"), "iso_download": ("POST", "/isos"),
    "img_list": ("GET", "/cloud-images"), "img_download": ("POST", "/cloud-images"),
    "autostart_list": ("GET", "/autostart"),
}

_KIND_PREFIX = {"switches": "switch_", "datastores": "datastore_", "guests": ""}


@dataclass(frozen=True)
class Route:
    """Where an operation is served: its verb, its path under /1.0 and how its arguments arrive."""

    operation: catalog.Operation
    verb: str
    path: str
    placeholder: str | None  # the path's placeholder ("name", "uuid", "tag")
    fills: str | None  # the parameter it fills (the operation's target when not a parameter itself)

    @property
    def in_query(self) -> bool:
        return self.verb in ("GET", "DELETE")


def route_of(op: catalog.Operation) -> Route:
    """The route of one operation (see the module docstring)."""
    if op.name in SPECIAL:
        verb, path = SPECIAL[op.name]
    elif op.target is None:
        verb, path = ("POST" if op.mutating else "GET"), "/" + op.name.replace("_", "/")
    else:
        kind = op.path.split("/")[1]
        action = op.name.removeprefix(_KIND_PREFIX[kind]).replace("_", "/")
        verb, path = ("POST" if op.mutating else "GET"), f"/{kind}/{{name}}/{action}"
    holders = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    holder = holders[0] if holders else None
    names = {p.name for p in op.params}
    fills = None
    if holder is not None:  # "{name}" fills the target (``spec``, ``names``...); switch_info's is its ``names``
        fills = holder if holder in names else op.target or ("names" if "names" in names else None)
        if fills is None:
            raise catalog.CatalogError(f"{op.name}: /1.0{path} has a placeholder that fills no parameter")
    return Route(op, verb, path, holder, fills)


def routes() -> list[Route]:
    return [route_of(op) for op in catalog.operations()]


# -- results ---------------------------------------------------------------------------------------------

def redact_result(value: Any) -> Any:
    """A result with no secret in it: secret keys' values hidden in mappings and in configuration texts."""
    if isinstance(value, str):
        return catalog.redact_text(value) if any(key in value for key in SECRET_KEYS) else value
    if isinstance(value, dict):
        return {k: HIDDEN if k in SECRET_KEYS and v else redact_result(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_result(v) for v in value]
    return value


class _Encoded(JSONResponse):
    """A JSON response whose body is already encoded (``sync`` encodes before it knows whether to redact)."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


def _encode(content: Any) -> bytes:
    """``content`` exactly as Starlette's ``JSONResponse.render`` encodes it."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


_SECRET_WORDS = tuple(key.encode() for key in SECRET_KEYS)


def sync(metadata: Any) -> JSONResponse:
    """The sync envelope of ``metadata``, secrets hidden. It is encoded first: where no secret key's name
    occurs in the text (every list of 1,000 guests), ``redact_result`` could change nothing, and its walk of
    every value is skipped; JSON writes a key's name as it is, so the test cannot miss one."""
    content = {"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}
    body = _encode(content)
    if any(word in body for word in _SECRET_WORDS):
        return JSONResponse({**content, "metadata": redact_result(metadata)})
    return _Encoded(body)


def asynchronous(info: envelope.OperationInfo) -> JSONResponse:
    body = envelope.Async(operation=info.location, metadata=info).model_dump(by_alias=True)
    return JSONResponse(redact_result(body), status_code=202, headers={"Location": info.location})


# -- endpoints -------------------------------------------------------------------------------------------

def _body_model(route: Route, params: list[catalog.Param]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for p in params:
        fields[p.name] = (p.type, ... if p.required else (p.default if p.default is not inspect.Parameter.empty
                                                            else None))
    name = "".join(part.title() for part in route.operation.name.split("_")) + "Request"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _make_hivectl(request: Request, principal: Any, token: CancelToken | None) -> Hivectl:
    """A ``Hivectl`` acting for ``principal`` (its audit lines and events name it), on a host that
    answers ``token`` when the operation runs in the background."""
    state = request.app.state
    if token is None:
        return Hivectl(state.vm_dir, state.driver, principal=principal)
    from hivectl.host.local import LocalHost

    return Hivectl(state.vm_dir, state.driver, principal=principal, host=SteppedHost(LocalHost(), token))


def _execute(request: Request, route: Route, principal: Any, args: dict[str, Any], dry_run: bool) -> Response:
    op = route.operation
    shown = catalog.redact(op, args)
    for resource in op.resources(args):
        security.authorize(request, principal, op.role, resource, op.method, shown)
    if op.asynchronous and not dry_run:
        hv_request = request

        def work(token: CancelToken) -> Any:
            return catalog.invoke(_make_hivectl(hv_request, principal, token), op, args)

        kinds: dict[str, list[str]] = {}
        for resource in op.resources(args):
            if resource != "/":
                kinds.setdefault(resource.split("/")[1], []).append(f"/1.0{resource}")
        record = request.app.state.operations.submit(op.name, kinds, work)
        log.info("%s: %s %s", principal, op.name, shown)
        return asynchronous(record.info())
    if op.mutating and not dry_run:
        log.info("%s: %s %s", principal, op.name, shown)
    if op.name == "guests":
        return _cached_list(request, principal, op, args)
    return sync(catalog.invoke(_make_hivectl(request, principal, None), op, args, dry_run=dry_run))


def _cached_list(request: Request, principal: Any, op: catalog.Operation, args: dict[str, Any]) -> Response:
    """``GET /1.0/guests`` through the daemon's ``ListCache`` (hivectl/daemon/listcache.py)."""
    hv = _make_hivectl(request, principal, None)

    def roots() -> list[str]:
        return [str(d["path"]) for d in hv.datastore_list()]

    def render() -> bytes:
        return bytes(sync(catalog.invoke(hv, op, args)).body)

    key = tuple(sorted((k, str(v)) for k, v in args.items()))
    return Response(request.app.state.list_cache.get(key, roots, render), media_type="application/json")


def endpoint_for(route: Route) -> Callable[..., Response]:
    """A FastAPI endpoint for ``route`` whose signature declares its path, query and body parameters."""
    op = route.operation
    others = [p for p in op.params if p.name != route.fills]
    signature: list[inspect.Parameter] = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter("principal", inspect.Parameter.KEYWORD_ONLY, annotation=Any,
                          default=Depends(security.principal_of)),
    ]
    if route.placeholder is not None:
        signature.append(inspect.Parameter(route.placeholder, inspect.Parameter.KEYWORD_ONLY, annotation=str,
                                           default=PathParam()))
    model: type[BaseModel] | None = None
    if route.in_query:
        for p in others:
            default = ... if p.required else (None if p.default is inspect.Parameter.empty else p.default)
            signature.append(inspect.Parameter(f"q_{p.name}", inspect.Parameter.KEYWORD_ONLY, annotation=p.type,
                                               default=Query(default, alias=p.name)))
    elif others:
        model = _body_model(route, others)
        required = any(p.required for p in others)
        signature.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY,
                                           annotation=model if required else model | None,
                                           default=Body(...) if required else Body(None)))
    if op.mutating:
        signature.append(inspect.Parameter("dry_run", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                                           default=Query(False, description="return the plan, change nothing")))

    def endpoint(**kwargs: Any) -> Response:
        args: dict[str, Any] = {}
        if route.placeholder is not None and route.fills is not None:
            value = kwargs[route.placeholder]
            args[route.fills] = [value] if _is_list(op.param(route.fills).type) else value
        for key, value in kwargs.items():
            if key.startswith("q_") and value is not None:
                args[key[2:]] = value
        body = kwargs.get("body")
        if body is not None:
            args.update(body.model_dump(exclude_unset=True))
        try:
            return _execute(kwargs["request"], route, kwargs["principal"], args, bool(kwargs.get("dry_run")))
        except HivectlError:
            raise  # the application's handler answers it
        except Exception as error:
            # Answered here, not by an application-wide handler for Exception: Starlette re-raises after
            # such a handler answers, and uvicorn then drops the connection the client keeps alive.
            status, body = envelope.error_body(error)
            if status >= 500:
                log.error("%s: internal error", op.name, exc_info=error)
            return JSONResponse(body, status_code=status)

    endpoint.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name
    endpoint.__doc__ = op.doc
    return endpoint


def _is_list(tp: Any) -> bool:
    import typing

    return typing.get_origin(tp) is list or any(typing.get_origin(a) is list for a in typing.get_args(tp))


def router() -> APIRouter:
    """The router of every catalog operation, under /1.0."""
    api = APIRouter(prefix="/1.0")
    seen: dict[tuple[str, str], str] = {}
    for route in routes():
        key = (route.verb, route.path)
        if key in seen:
            raise catalog.CatalogError(f"{route.operation.name} and {seen[key]} both {route.verb} /1.0{route.path}")
        seen[key] = route.operation.name
        op = route.operation
        result_model = envelope.Sync[op.returns]  # type: ignore[name-defined]
        responses: dict[int | str, dict[str, Any]] = {
            400: {"model": envelope.Error}, 401: {"model": envelope.Error}, 403: {"model": envelope.Error},
            404: {"model": envelope.Error}, 409: {"model": envelope.Error}}
        if op.asynchronous:
            responses[202] = {"model": envelope.Async, "description": "started in the background"}
        api.add_api_route(route.path, endpoint_for(route), methods=[route.verb], response_model=result_model,
                          responses=responses, summary=op.summary, description=op.doc, operation_id=op.name,
                          tags=[op.path.split("/")[1] or "host"])
    return api
