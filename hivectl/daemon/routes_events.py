"""``/1.0/events`` as a websocket and as Server-Sent Events: the retained log replayed, then live.

Each listener reads the event log itself (``hivectl/journal/log.py``, a :class:`Cursor` of its own) at
its own pace; there is no queue in the daemon that could overflow, so a slow listener is never dropped
(Incus drops slow listeners and loses their events, doc/events.md in lxc/incus). A listener that
disconnects reconnects with ``?since=N`` (SSE: the ``Last-Event-ID`` header its browser sends) and gets
every event after N that the log still holds (at least the last 10,000). One that asks for more than the
log holds gets a ``gap`` message naming the numbers no longer kept, never a silent hole.

Messages: every event is the log's JSON object (``seq``, ``time``, ``type``, ``target``, ``who``,
``details``); a gap is ``{"seq": null, "type": "gap", "details": {"first": A, "last": B}}``. SSE frames
carry ``id: SEQ`` and ``event: TYPE``; a comment line every ``KEEPALIVE`` seconds keeps proxies from
closing an idle stream. A listener sees the events of the resources it holds ``viewer`` on (the roles of
``hivectl.auth``, checked through the daemon's one seam, ``security.authorize``).

``GET /1.0/events`` without ``Accept: text/event-stream`` answers the catalog's ``events`` operation
(the retained events as a sync response), and ``GET /1.0/audit`` is the catalog's ``audit`` operation
(admins only), served by hivectl/daemon/routes.py like every other operation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

from hivectl.errors import HivectlError
from hivectl.journal.log import Cursor
from hivectl.journal.query import events_log, parse_seq

POLL = 0.05  # seconds between looks at the log while it has nothing new
KEEPALIVE = 15.0  # seconds of silence after which an SSE stream sends a comment line


class Listener:
    """One client's reading of the event log: its cursor, its filter and its rights (cached per target)."""

    def __init__(self, connection: Any, since: int, guest: str | None) -> None:
        from hivectl.daemon import security

        self.connection = connection
        self.vm_dir = str(connection.app.state.root)
        self.principal = security.principal_of(connection)
        security.authorize(connection, self.principal, "viewer", f"/guests/{guest}" if guest else "/")
        self.cursor: Cursor = events_log(f"{self.vm_dir}/.config").cursor(since)
        self.guest = guest
        self.allowed: dict[str, bool] = {}
        self.reported = 0

    def may_see(self, target: str) -> bool:
        if target not in self.allowed:
            from hivectl.daemon import security

            try:
                security.authorize(self.connection, self.principal, "viewer", target or "/")
                self.allowed[target] = True
            except HivectlError:
                self.allowed[target] = False
        return self.allowed[target]

    def next_batch(self) -> list[dict[str, Any]]:
        """What is new in the log for this listener: gaps first (as messages), then its events."""
        events = self.cursor.poll()
        out: list[dict[str, Any]] = [{"seq": None, "type": "gap", "details": {"first": first, "last": last}}
                                     for first, last in self.cursor.missed[self.reported:]]
        self.reported = len(self.cursor.missed)
        for event in events:
            target = str(event.get("target", "/"))
            if self.guest is not None and target != f"/guests/{self.guest}":
                continue
            if self.may_see(target):
                out.append(event)
        return out

    def close(self) -> None:
        self.cursor.close()


def _since(value: str | None, last_event_id: str | None = None) -> int:
    return parse_seq(value if value not in (None, "") else last_event_id)


def _sse(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"))
    head = f"id: {message['seq']}\n" if message.get("seq") is not None else ""
    return f"{head}event: {message.get('type', 'message')}\ndata: {data}\n\n".encode()


def router() -> APIRouter:
    """The events router (listed in hivectl/daemon/app.py's ROUTERS before the catalog's, so that an SSE
    request to ``GET /1.0/events`` reaches it)."""
    api = APIRouter(prefix="/1.0", tags=["events"])

    @api.get("/events", include_in_schema=False)
    async def events_stream(request: Request, since: str | None = None, guest: str | None = None) -> Response:
        if "text/event-stream" not in request.headers.get("accept", ""):
            return await _catalog_events(request, since, guest)
        listener = Listener(request, _since(since, request.headers.get("last-event-id")), guest)

        async def stream() -> AsyncIterator[bytes]:
            quiet_since = time.monotonic()
            try:
                yield b": hivectl events\n\n"  # sent at once: the client knows it is connected
                while True:
                    batch = listener.next_batch()
                    if batch:
                        yield b"".join(_sse(message) for message in batch)
                        quiet_since = time.monotonic()
                        continue
                    if await request.is_disconnected():
                        return
                    if time.monotonic() - quiet_since > KEEPALIVE:
                        yield b": keepalive\n\n"
                        quiet_since = time.monotonic()
                    await asyncio.sleep(POLL)
            finally:
                listener.close()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @api.websocket("/events")
    async def events_socket(websocket: WebSocket, since: str | None = None, guest: str | None = None) -> None:
        try:
            listener = Listener(websocket, _since(since), guest)
        except HivectlError as error:
            from hivectl.daemon import envelope

            status, body = envelope.error_body(error)
            await websocket.close(code=1008 if status in (401, 403) else 1003, reason=body["error"][:120])
            return
        await websocket.accept()
        # The client sends nothing; a receive that ends means it went away (even while the log is quiet).
        gone = asyncio.ensure_future(websocket.receive())
        try:
            while not gone.done():
                batch = listener.next_batch()
                if batch:
                    for message in batch:
                        await websocket.send_text(json.dumps(message, separators=(",", ":")))
                    continue
                await asyncio.sleep(POLL)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away: it reconnects with since and misses nothing
        finally:
            gone.cancel()
            listener.close()

    return api


async def _catalog_events(request: Request, since: str | None, guest: str | None) -> Response:
    """``GET /1.0/events`` as the catalog's ``events`` operation (what hivectl/daemon/routes.py serves)."""
    from starlette.concurrency import run_in_threadpool

    from hivectl import catalog
    from hivectl.api import Hivectl
    from hivectl.daemon import security
    from hivectl.daemon.routes import sync

    principal = security.principal_of(request)
    operation = catalog.get("events")
    args: dict[str, Any] = {"since": _since(since)}
    if guest is not None:
        args["guest"] = guest
    for resource in operation.resources(args):
        security.authorize(request, principal, operation.role, resource, operation.name, args)
    state = request.app.state
    result = await run_in_threadpool(catalog.invoke, Hivectl(state.vm_dir, state.driver), operation, args)
    return sync(result)


def operation_events(vm_dir: str) -> Any:
    """A listener for the daemon's operations (``OperationManager.listeners``): each change of a background
    operation's status or progress becomes an ``operation`` event."""
    from hivectl.journal.audit import redact
    from hivectl.journal.events import emit_quietly

    config_dir = f"{vm_dir}/.config"
    last: dict[str, tuple[str, int]] = {}

    def listener(info: Any) -> None:
        progress = (info.metadata or {}).get("progress") or {}
        key = (str(info.status), int(progress.get("steps") or 0))
        if last.get(info.id) == key:
            return
        last[info.id] = key
        if info.status in ("Success", "Failure", "Cancelled"):
            last.pop(info.id, None)
        resources = [path.removeprefix("/1.0") for paths in (info.resources or {}).values() for path in paths]
        details: dict[str, Any] = {"id": info.id, "operation": info.description, "status": info.status,
                                   "steps": key[1]}
        if progress.get("command"):
            details["command"] = " ".join(redact(str(progress["command"]).split(" ")))[:200]
        if info.err:
            details["error"] = info.err
        emit_quietly(config_dir, "operation", resources[0] if resources else "/", details)

    return listener
