"""Single-use console tickets: how a browser's websocket proves who opened it (issue 11.7).

A browser cannot put an ``Authorization`` header on a websocket, and a bearer token in a URL ends up in
access logs and browser history. So the page asks ``POST /1.0/guests/NAME/console?type=serial|vnc`` with
its token (role ``operator`` on the guest) and gets a ticket: 160 random bits (``secrets``), valid
``TTL`` seconds, good for one websocket to that guest's console of that type. The ticket travels in the
websocket's ``Sec-WebSocket-Protocol`` list (``hivectl.ticket.<hex>``, the way Kubernetes passes bearer
tokens to its websockets), never in the URL, so no log line can hold it.

Only the SHA-256 of a ticket is kept, in this process's memory: a ticket is gone when the daemon
restarts, and nothing on disk or in a core dump of the table is usable. Redeeming takes the entry out of
the table first, whatever the outcome, so a ticket is tried at most once: a second use, an expired
ticket, one for another guest or console type, or one presented by a different caller than it was
issued to (over the unix socket the caller is known) are all refused.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from hivectl.auth.principal import Principal
from hivectl.errors import HivectlError

TTL = 30.0  # seconds a ticket may wait for its websocket
MAX_OUTSTANDING = 1024  # tickets kept at once; the oldest go first (a flood costs memory, never correctness)
TYPES = ("serial", "vnc")
PROTOCOL = "hivectl.console"  # the subprotocol the daemon answers with
TICKET_PREFIX = "hivectl.ticket."  # the subprotocol entry that carries the ticket


class TicketRefused(HivectlError):
    """A websocket's ticket is unknown, used, expired or not for this console (the message says which)."""


@dataclass(frozen=True)
class Ticket:
    guest: str
    kind: str
    principal: Principal
    expires: float  # time.monotonic() deadline


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class Tickets:
    """The daemon's outstanding tickets (``app.state.tickets``); safe to use from any thread."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._table: OrderedDict[str, Ticket] = OrderedDict()

    def issue(self, guest: str, kind: str, principal: Principal) -> str:
        """A new ticket for ``principal`` to open ``guest``'s ``kind`` console once, within ``ttl`` seconds."""
        if kind not in TYPES:
            raise HivectlError(f"unknown console type {kind!r}: expected serial or vnc")
        ticket = secrets.token_hex(20)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, t in self._table.items() if t.expires <= now]:
                del self._table[key]
            while len(self._table) >= MAX_OUTSTANDING:
                self._table.popitem(last=False)
            self._table[_digest(ticket)] = Ticket(guest, kind, principal, now + self.ttl)
        return ticket

    def redeem(self, ticket: str, guest: str, kind: str, caller: Principal | None = None) -> Principal:
        """The principal ``ticket`` was issued to, if it is good for ``guest``'s ``kind`` console now; the
        ticket is spent either way. ``caller``: who presents it, when the transport says (unix socket)."""
        with self._lock:
            entry = self._table.pop(_digest(ticket), None)
        if entry is None:
            raise TicketRefused("console ticket unknown or already used")
        if time.monotonic() >= entry.expires:
            raise TicketRefused(f"console ticket expired (tickets are valid {self.ttl:g} s)")
        if (entry.guest, entry.kind) != (guest, kind):
            raise TicketRefused(f"console ticket is for {entry.guest}'s {entry.kind} console, "
                                f"not {guest}'s {kind} console")
        if caller is not None and (caller.uid, caller.token_id) != (entry.principal.uid, entry.principal.token_id):
            raise TicketRefused("console ticket was issued to someone else")
        return entry.principal

    def __len__(self) -> int:
        with self._lock:
            return len(self._table)
