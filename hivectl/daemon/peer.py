"""Who is on the other end of a unix socket: the kernel's credentials of the connecting process.

Over the unix socket the daemon trusts the peer's uid as the kernel reports it, like Incus's unix socket
and like sudo trusting its caller: ``SO_PEERCRED`` on Linux (socket(7)), ``LOCAL_PEERCRED`` on FreeBSD
(unix(4): a ``struct xucred`` whose ``cr_uid`` follows ``cr_version``). uvicorn builds the ASGI scope
without the socket, so ``PeerH11Protocol`` reads the credentials when the connection is made and hands
them to the application in the scope under ``PEER_KEY`` for HTTP requests and websockets alike.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

PEER_KEY = "hivectl.peer_uid"  # scope key: the uid of the unix-socket peer (absent over TCP)

_SOL_LOCAL, _LOCAL_PEERCRED = 0, 1  # FreeBSD's <sys/un.h>
PLATFORM: str = sys.platform  # a plain str, so that type checkers on either system see both branches


def peer_uid(sock: socket.socket) -> int | None:
    """The effective uid of the process connected to unix socket ``sock`` (None if not a unix socket)."""
    if sock.family != socket.AF_UNIX:
        return None
    if PLATFORM.startswith("linux"):
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", data)
        return int(uid)
    data = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, 4 + 4 + 2 + 2 + 16 * 4 + 8)
    _version, uid = struct.unpack_from("II", data)
    return int(uid)


class _WithPeer:
    """The application, with the connection's peer uid added to every scope it is called with."""

    def __init__(self, app: Any, uid: int) -> None:
        self.app = app
        self.uid = uid

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope[PEER_KEY] = self.uid
        await self.app(scope, receive, send)


class PeerH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, passing the unix-socket peer's uid to the application."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        if uid is not None:
            self.app = _WithPeer(self.app, uid)

    def handle_websocket_upgrade(self, event: Any) -> None:
        super().handle_websocket_upgrade(event)
        # The websocket protocol that took over reads its application from the config: give it ours. It
        # calls the application only after the handshake, later than this.
        protocol = self.transport.get_protocol()
        if isinstance(self.app, _WithPeer) and hasattr(protocol, "app"):
            protocol.app = _WithPeer(protocol.app, self.app.uid)
