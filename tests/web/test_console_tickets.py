"""Console tickets, the Origin check and the two relays, on a real hivectld over TLS on the simulated host.

The simulated bhyve keeps an nmdm node as a plain file, so the serial tests put a real pseudo-terminal
where the guest's nmdm B side is (its master is the "guest"), and the VNC tests put a TCP server of the
test's own at the guest's ``graphics_port``: what crosses the websocket is then checked byte for byte at
both ends. The real QEMU guest in a real browser is tests/web/test_console_qemu.py.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hivectl.journal import audit_path, events_path
from tests.web.conftest import WebDaemon, free_port, read_until, started, ws_client

websockets_exceptions = pytest.importorskip("websockets.exceptions")


def ticket(web: WebDaemon, name: str, kind: str = "serial", token: str | None = None) -> Any:
    with web.client(token) as client:
        return client.post(f"/1.0/guests/{name}/console", params={"type": kind})


def connect(web: WebDaemon, name: str, kind: str, issued: str | None, origin: str | None = "own") -> Any:
    """A websocket to the console (the daemon's own Origin unless told), with ``issued`` as the ticket."""
    headers = {}
    if origin is not None:
        headers["Origin"] = web.origin if origin == "own" else origin
    protocols = ["hivectl.console", *([f"hivectl.ticket.{issued}"] if issued else [])]
    context = ssl.create_default_context(cafile=str(web.cert))
    url = f"wss://{web.origin.removeprefix('https://')}/1.0/guests/{name}/console/ws?type={kind}"
    return ws_client.connect(url, ssl=context, additional_headers=headers, subprotocols=protocols,
                             open_timeout=20, max_size=None)


def refused(web: WebDaemon, *args: Any, **kwargs: Any) -> int:
    """The HTTP status a refused websocket handshake got (fails if the handshake succeeded)."""
    try:
        with connect(web, *args, **kwargs):
            pass
    except websockets_exceptions.InvalidStatus as error:
        return int(error.response.status_code)
    raise AssertionError("the websocket was accepted")


def audit_lines(web: WebDaemon) -> list[dict[str, Any]]:
    path = Path(audit_path(str(web.vm_dir / ".config")))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_serial_relay_both_ways_and_ticket_single_use(sim_web: WebDaemon, serial_guest: tuple[str, int]) -> None:
    name, guest_side = serial_guest
    reply = ticket(sim_web, name)
    assert reply.status_code == 200, reply.text
    meta = reply.json()["metadata"]
    issued = meta["ticket"]
    assert meta["expires_in"] == 30 and meta["subprotocols"] == ["hivectl.console", f"hivectl.ticket.{issued}"]
    assert reply.headers["cache-control"] == "no-store"
    with connect(sim_web, name, "serial", issued) as ws:
        assert ws.subprotocol == "hivectl.console"
        ws.send(b"root\r")
        assert b"root\r" in read_until(guest_side, b"root\r")
        os.write(guest_side, b"login: \xe2\x9c\x93 ok\r\n")
        seen = b""
        while b"ok\r\n" not in seen:
            seen += ws.recv(timeout=10)
        assert seen.endswith(b"login: \xe2\x9c\x93 ok\r\n"), seen  # raw: no echo of the browser's input added
    assert refused(sim_web, name, "serial", issued) == 403  # a ticket is good once
    events = [json.loads(line) for line in Path(events_path(str(sim_web.vm_dir / ".config"))).read_text().splitlines()]
    opened = [e for e in events if e["type"] == "console-opened" and e["target"] == f"/guests/{name}"]
    assert opened and opened[-1]["details"]["via"] == "hivectld" and opened[-1]["who"]["uid"] == 0
    assert "token" in opened[-1]["who"], opened[-1]  # by whom: the token the ticket was asked with
    lines = [a for a in audit_lines(sim_web) if a["operation"] == "console"]
    assert lines[-2]["result"] == "ok" and lines[-1]["result"] == "refused", lines[-2:]
    assert "already used" in lines[-1]["message"]


def test_ticket_bound_to_guest_type_and_origin(sim_web: WebDaemon, serial_guest: tuple[str, int]) -> None:
    name, _ = serial_guest
    started(sim_web, "t2")
    # Another guest's ticket, or another type's, opens nothing, and is spent by the try: it then no longer
    # opens the console it was for (t1's serial console, a real pty that would be relayed).
    issued = ticket(sim_web, "t2").json()["metadata"]["ticket"]
    assert refused(sim_web, name, "serial", issued) == 403
    issued = ticket(sim_web, name).json()["metadata"]["ticket"]
    assert refused(sim_web, "t2", "serial", issued) == 403
    assert refused(sim_web, name, "serial", issued) == 403
    issued = ticket(sim_web, name).json()["metadata"]["ticket"]
    assert refused(sim_web, name, "vnc", issued) == 403
    assert refused(sim_web, name, "serial", issued) == 403
    # A foreign Origin, or none, is refused even with a good ticket.
    for origin in ("https://evil.example", "null", f"http://{sim_web.origin.removeprefix('https://')}", None):
        good = ticket(sim_web, name).json()["metadata"]["ticket"]
        assert refused(sim_web, name, "serial", good, origin=origin) == 403, origin
    assert refused(sim_web, name, "serial", None) == 403  # no ticket at all
    messages = [a["message"] for a in audit_lines(sim_web) if a["operation"] == "console" and a["result"] == "refused"]
    assert any("for t2's serial console, not t1's" in m for m in messages), messages
    assert any("for t1's serial console, not t1's vnc" in m for m in messages), messages
    assert any("origin 'https://evil.example' refused" in m for m in messages), messages
    assert any("without an Origin" in m for m in messages), messages
    # No ticket in any log: the daemon's, the audit log, the events.
    config = str(sim_web.vm_dir / ".config")
    for path in (sim_web.log, Path(audit_path(config)), Path(events_path(config))):
        assert issued not in path.read_text(), path


def test_configured_origin_allowed(sim_web: WebDaemon, serial_guest: tuple[str, int]) -> None:
    name, guest_side = serial_guest
    conf = sim_web.vm_dir / ".config" / "system.conf"
    before = conf.read_text()
    conf.write_text(before + 'hivectld_origins="https://other.example https://console.example:8443"\n')
    try:
        issued = ticket(sim_web, name).json()["metadata"]["ticket"]
        with connect(sim_web, name, "serial", issued, origin="https://console.example:8443") as ws:
            ws.send(b"x")
            read_until(guest_side, b"x")
        conf.write_text(before + 'hivectld_origins="console.example"\n')  # not an origin: refused, named
        good = ticket(sim_web, name).json()["metadata"]["ticket"]
        assert refused(sim_web, name, "serial", good, origin="https://console.example:8443") == 403
        last = [a for a in audit_lines(sim_web) if a["operation"] == "console"][-1]
        assert last["message"] == (f"{conf}: hivectld_origins='console.example': expected origins like "
                                   "https://host:port"), last
    finally:
        conf.write_text(before)


def test_ticket_needs_operator_and_a_running_guest(sim_web: WebDaemon, serial_guest: tuple[str, int]) -> None:
    name, _ = serial_guest
    viewer = sim_web.make_token("viewer")
    reply = ticket(sim_web, name, token=viewer)
    assert reply.status_code == 403 and reply.json()["code"] == "forbidden", reply.text
    refusal = [a for a in audit_lines(sim_web) if a["operation"] == "console"][-1]
    assert refusal["result"] == "refused" and refusal["target"] == [f"/guests/{name}"]
    operator = sim_web.make_token("operator", f"/guests/{name}")
    assert ticket(sim_web, name, token=operator).status_code == 200
    assert ticket(sim_web, "t2", token=operator).status_code == 403  # operator of t1 only
    made = sim_web.hivectl("create", "-t", "default", "t3")
    assert made.returncode == 0, made.stderr
    reply = ticket(sim_web, "t3")
    assert reply.status_code == 409 and reply.json()["error"] == "t3 is not running (Stopped)", reply.text
    assert ticket(sim_web, "nosuch").status_code == 404
    with sim_web.client() as client:
        dry = client.post(f"/1.0/guests/{name}/console", params={"dry_run": "1"}).json()["metadata"]
    assert dry["ticket"] is None and dry["subprotocols"] == ["hivectl.console"], dry
    assert ticket(sim_web, name, "vnc").json()["error"] == f"{name} has no graphical console (set graphics=yes)"
    with sim_web.client() as client:
        assert client.post(f"/1.0/guests/{name}/console", params={"type": "ssh"}).status_code == 400


class EchoVnc:
    """A TCP server standing in for bhyve's VNC server: sends a greeting, then echoes in upper case."""

    def __init__(self, port: int) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.received = b""
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            connection.sendall(b"RFB 003.008\n")
            while data := connection.recv(4096):
                self.received += data
                connection.sendall(data.upper())

    def close(self) -> None:
        self.server.close()


def test_vnc_relay_to_the_guests_tcp_server(sim_web: WebDaemon) -> None:
    port = free_port()
    server = EchoVnc(port)
    try:
        started(sim_web, "v1", "loader=uefi", "graphics=yes", f"graphics_port={port}", "graphics_listen=0.0.0.0")
        assert f"vnc=0.0.0.0:{port}" in (sim_web.vm_dir / "v1" / "console").read_text()
        issued = ticket(sim_web, "v1", "vnc").json()["metadata"]["ticket"]
        with connect(sim_web, "v1", "vnc", issued) as ws:
            assert ws.recv(timeout=10) == b"RFB 003.008\n"
            ws.send(b"rfb 003.008\n\x01\x00\xff")
            got = b""
            while len(got) < 15:
                got += ws.recv(timeout=10)
            assert got == b"RFB 003.008\n\x01\x00\xff"
        assert server.received == b"rfb 003.008\n\x01\x00\xff"
        assert refused(sim_web, "v1", "vnc", issued) == 403
    finally:
        server.close()


def test_tickets_expire_and_are_stored_hashed() -> None:
    from hivectl.auth.principal import Principal
    from hivectl.daemon.tickets import TicketRefused, Tickets

    table = Tickets(ttl=0.2)
    alice = Principal(1001, "tok1", "alice")
    issued = table.issue("g1", "serial", alice)
    assert issued not in repr(vars(table)) and len(issued) == 40
    time.sleep(0.3)
    with pytest.raises(TicketRefused, match="expired"):
        table.redeem(issued, "g1", "serial")
    with pytest.raises(TicketRefused, match="already used"):
        table.redeem(issued, "g1", "serial")
    issued = table.issue("g1", "serial", alice)
    with pytest.raises(TicketRefused, match="someone else"):
        table.redeem(issued, "g1", "serial", caller=Principal(0))
    issued = table.issue("g1", "vnc", alice)
    assert table.redeem(issued, "g1", "vnc", caller=Principal(1001, "tok1")) == alice
    assert len(table) == 0


def test_console_page_served_with_security_headers(sim_web: WebDaemon) -> None:
    with sim_web.client() as client:
        page = client.get("/ui/console.html")
        script = client.get("/ui/console.js")
    assert page.status_code == 200 and '<script type="module" src="console.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert Path(__file__).resolve().parents[2].joinpath("hivectl/daemon/static/console.html").is_file()
