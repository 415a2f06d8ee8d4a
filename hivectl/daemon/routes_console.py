"""The consoles in the browser: tickets, and the websockets that carry a guest's serial and VNC consoles.

* ``POST /1.0/guests/{name}/console?type=serial|vnc`` (role ``operator`` on the guest, as ``hivectl
  console``): a single-use ticket, valid 30 s (hivectl/daemon/tickets.py), and the subprotocols to open
  the websocket with. The guest must be running and have that console (409/400 otherwise, the CLI's lines).
* ``GET /1.0/guests/{name}/console/ws?type=serial|vnc`` (websocket): the ticket in the
  ``Sec-WebSocket-Protocol`` list; answered with subprotocol ``hivectl.console``. Then binary frames both
  ways: on ``serial`` the bytes of the guest's first serial port (the target ``hivectl console`` attaches
  to, from ops.lifecycle.console_target: the nmdm B side on bhyve, opened raw as cu(1) does; the QEMU
  chardev socket on Linux); on ``vnc`` the RFB stream of the guest's VNC server (ops.lifecycle.vnc_target:
  bhyve's fbuf ``tcp=``, QEMU's ``-vnc``), which noVNC speaks.

Before anything else the websocket's ``Origin`` must be the daemon's own (the scheme and ``Host`` the
request came to) or one listed in system.conf's ``hivectld_origins``: a page of another site cannot open a
console even with a ticket it stole (Sylve's VNC websocket accepts any origin). A refused websocket is
answered 403 before the handshake, and the refusal is one audit line (operation ``console``, result
``refused``, the reason); an accepted one is an audit line ``ok`` and a ``console-opened`` event naming
the ticket's principal. Tickets appear in no log, event or audit line: only in the one response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hivectl.auth.principal import Principal
from hivectl.daemon import envelope, security
from hivectl.daemon.tickets import PROTOCOL, TICKET_PREFIX, TTL, TicketRefused, Tickets
from hivectl.errors import ConfigError, HivectlError

log = logging.getLogger("hivectld.console")

CHUNK = 65536
ORIGINS_KEY = "hivectld_origins"  # system.conf: space-separated origins allowed besides the daemon's own
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


def tickets_of(app: Any) -> Tickets:
    """The application's ticket table (made on first use)."""
    table = getattr(app.state, "tickets", None)
    if table is None:
        table = app.state.tickets = Tickets()
    return table


def allowed_origins(root: str) -> list[str]:
    """``hivectld_origins`` of vm_dir/.config/system.conf, each checked (ConfigError naming file and key)."""
    from hivectl.rcfile import RcFile

    conf = Path(root) / ".config" / "system.conf"
    if not conf.is_file():
        return []
    value = dict(RcFile.load(conf).values).get(ORIGINS_KEY, "")
    origins = value.split()
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(str(conf), ORIGINS_KEY, origin, "expected origins like https://host:port")
    return [o.lower() for o in origins]


def origin_refusal(websocket: WebSocket) -> str | None:
    """Why this websocket's Origin is refused, or None when it is the daemon's own or a configured one."""
    origin = websocket.headers.get("origin")
    if not origin:
        return "websocket without an Origin header refused"
    scheme = "https" if websocket.url.scheme in ("wss", "https") else "http"
    own = f"{scheme}://{websocket.headers.get('host', '')}".lower()
    if origin.lower() == own or origin.lower() in allowed_origins(str(websocket.app.state.root)):
        return None
    return f"websocket from origin {origin[:100]!r} refused (not this daemon's origin {own!r})"


def _targets(app: Any, name: str, kind: str) -> Any:
    """The console's target (ops.lifecycle's ConsoleTarget), and the host to reach it through."""
    from hivectl.context import Context
    from hivectl.ops import lifecycle

    ctx = Context(app.state.driver, app.state.vm_dir)
    target = lifecycle.console_target(ctx, name) if kind == "serial" else lifecycle.vnc_target(ctx, name)
    return target, ctx


def _config_dir(app: Any) -> str:
    return f"{app.state.root}/.config"


def _audit(app: Any, who: dict[str, Any], name: str, kind: str, result: str, message: str = "") -> None:
    from hivectl.journal import audit

    config_dir = _config_dir(app)
    if not os.path.isdir(config_dir):
        return
    arguments = {"name": name, "type": kind}
    if result == "refused":  # the daemon's seam for refusals (as security.authorize's 403s)
        if audit.refused(config_dir, "console", arguments, message, who) is None:
            log.error("audit log: cannot write the refusal of %s's %s console", name, kind)
        return
    try:
        audit.record(config_dir, "console", [f"/guests/{name}"], arguments, result, message, who)
    except OSError as error:
        log.error("audit log: %s", error)


def _who(principal: Principal | None, websocket: WebSocket) -> dict[str, Any]:
    from hivectl.journal.who import describe

    who: dict[str, Any] = describe(principal) if principal is not None else {"uid": None}
    if websocket.client is not None:
        who["remote"] = f"{websocket.client.host}:{websocket.client.port}"
    return who


def _caller(websocket: WebSocket) -> Principal | None:
    """Who opens the websocket when the transport says so (the unix socket's peer, a bearer header)."""
    try:
        return security.principal_of(websocket)  # type: ignore[arg-type]
    except HivectlError:
        return None


def _ticket(websocket: WebSocket) -> str:
    for protocol in websocket.scope.get("subprotocols") or []:
        if protocol.startswith(TICKET_PREFIX):
            return str(protocol[len(TICKET_PREFIX):])
    return ""


async def _open_serial(target: Any, ctx: Any) -> tuple[asyncio.StreamReader, Any, Any]:
    """(reader, writer, closer) on a serial console target: the QEMU socket or the nmdm tty."""
    if target.kind == "socket":
        reader, writer = await asyncio.open_unix_connection(target.target)
        return reader, writer, writer.close
    if target.kind != "nmdm":
        raise HivectlError(f"{target.name}'s {target.port} is a {target.kind} console: attach with "
                           f"'hivectl console {target.name}' on the host")
    import termios
    import tty

    path = ctx.host.devpath(target.target)
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        if os.isatty(fd):
            tty.setraw(fd, termios.TCSANOW)  # as cu(1): no echo, no line editing between guest and browser
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        read_end = os.fdopen(fd, "rb", buffering=0)
        read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_end)
        write_end = os.fdopen(os.dup(fd), "wb", buffering=0)
        write_transport, write_protocol = await loop.connect_write_pipe(asyncio.Protocol, write_end)
    except (OSError, ValueError) as error:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise HivectlError(f"cannot open console {target.target}: {error}") from None

    class Writer:
        def write(self, data: bytes) -> None:
            write_transport.write(data)

        async def drain(self) -> None:
            return None

    def close() -> None:
        read_transport.close()
        write_transport.close()

    _ = write_protocol
    return reader, Writer(), close


async def _open_vnc(target: Any) -> tuple[asyncio.StreamReader, Any, Any]:
    if target.kind == "socket":
        reader, writer = await asyncio.open_unix_connection(target.target)
    else:
        host, _, port = target.target.rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
    return reader, writer, writer.close


async def _relay(websocket: WebSocket, reader: asyncio.StreamReader, writer: Any) -> None:
    """Bytes both ways until either side ends."""

    async def to_guest() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            if data:
                writer.write(data)
                await writer.drain()

    async def to_browser() -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            await websocket.send_bytes(data)

    tasks = [asyncio.ensure_future(to_guest()), asyncio.ensure_future(to_browser())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def router() -> APIRouter:
    """The console router (listed in hivectl/daemon/app.py's ROUTERS)."""
    api = APIRouter(prefix="/1.0/guests", tags=["console"])

    @api.post("/{name}/console", operation_id="console_ticket",
              response_model=envelope.Sync[dict[str, Any]],
              responses={403: {"model": envelope.Error}, 404: {"model": envelope.Error},
                         409: {"model": envelope.Error}})
    async def ticket(name: str, request: Request,
                     type: str = Query("serial", pattern="^(serial|vnc)$",
                                       description="serial (xterm.js) or vnc (noVNC)"),
                     dry_run: bool = Query(False, description="check everything, issue no ticket")) -> JSONResponse:
        """A single-use ticket (valid 30 s) to open the guest's serial or VNC console over the websocket
        ``/1.0/guests/{name}/console/ws?type=...``, passed as the subprotocol ``hivectl.ticket.<ticket>``.
        With ``dry_run`` the same checks are made and the answer has no ticket (``ticket`` is null)."""
        from hivectl import validate

        principal = security.principal_of(request)
        validate.guest_name("request", "name", name)
        args = {"name": name, "type": type}
        security.authorize(request, principal, "operator", f"/guests/{name}", "console", args)
        await run_in_threadpool(_targets, request.app, name, type)  # running, and has that console
        issued = None if dry_run else tickets_of(request.app).issue(name, type, principal)
        return JSONResponse({"type": "sync", "status": "Success", "status_code": 200,
                             "metadata": {"ticket": issued, "expires_in": TTL, "type": type,
                                          "websocket": f"/1.0/guests/{name}/console/ws?type={type}",
                                          "subprotocols": [PROTOCOL, *([f"{TICKET_PREFIX}{issued}"] if issued
                                                                       else [])]}},
                            headers={"Cache-Control": "no-store"})

    @api.websocket("/{name}/console/ws")
    async def console_socket(websocket: WebSocket, name: str, type: str = "serial") -> None:
        app = websocket.app
        caller = _caller(websocket)
        kind = type if type in ("serial", "vnc") else "serial"
        principal: Principal | None = None
        try:
            refusal = origin_refusal(websocket)
        except HivectlError as error:  # hivectld_origins is not a list of origins: nothing is allowed
            refusal = str(error)
        if refusal is None:
            try:
                if type not in ("serial", "vnc"):
                    raise TicketRefused(f"unknown console type {type[:20]!r}: expected serial or vnc")
                presented = _ticket(websocket)
                if not presented:
                    raise TicketRefused("websocket without a console ticket (subprotocol hivectl.ticket.*)")
                principal = tickets_of(app).redeem(presented, name, kind, caller)
                security.authorize(websocket, principal, "operator", f"/guests/{name}")  # type: ignore[arg-type]
                target, ctx = await run_in_threadpool(_targets, app, name, kind)
            except HivectlError as error:
                refusal = str(error)
        if refusal is not None:
            await run_in_threadpool(_audit, app, _who(principal or caller, websocket), name, kind, "refused",
                                    refusal)
            log.info("console %s/%s refused: %s", name, kind, refusal)
            await websocket.close(code=1008, reason=refusal[:120])
            return
        try:
            if kind == "serial":
                reader, writer, close = await _open_serial(target, ctx)
            else:
                reader, writer, close = await _open_vnc(target)
        except (OSError, HivectlError) as error:
            message = f"cannot reach {name}'s {kind} console: {getattr(error, 'strerror', None) or error}"
            await run_in_threadpool(_audit, app, _who(principal, websocket), name, kind, "error", message)
            await websocket.close(code=1008, reason=message[:120])
            return
        who = _who(principal, websocket)
        await run_in_threadpool(_opened, app, who, name, kind, target)
        await websocket.accept(subprotocol=PROTOCOL)
        try:
            await _relay(websocket, reader, writer)
        finally:
            with contextlib.suppress(Exception):
                close()
            with contextlib.suppress(Exception):
                await websocket.close()

    return api


def _opened(app: Any, who: dict[str, Any], name: str, kind: str, target: Any) -> None:
    """The audit line and the ``console-opened`` event of an accepted console websocket."""
    from hivectl.journal.events import emit

    _audit(app, who, name, kind, "ok")
    config_dir = _config_dir(app)
    if os.path.isdir(config_dir):
        try:
            emit(config_dir, "console-opened", f"/guests/{name}", {"port": target.port, "type": kind,
                                                                  "via": "hivectld"}, who=who)
        except (OSError, ValueError) as error:
            log.error("event log: %s", error)
