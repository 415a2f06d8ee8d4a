"""Authentication and authorization of every request: the one place the daemon asks hivectl.auth.

The interface agreed with the rights model (hivectl/auth/, docs/security.md):

* ``hivectl.auth.principal.Principal(uid, token_id, name)``: who is calling;
* ``hivectl.auth.tokens.authenticate(vm_dir, bearer) -> Principal``, raising code ``unauthorized`` (401);
* ``hivectl.auth.policy.authorize(vm_dir, principal, role, path) -> None``, raising code ``forbidden`` (403).

A unix-socket peer without a bearer token is the principal of its uid as the kernel reports it
(``peer.PEER_KEY``); a bearer token stands for its owner, capped by the token, over either transport;
over TCP a token is required. A refusal is written to the audit log (hivectl/journal/audit.py) before it
is answered, with the arguments the request carried (secrets hidden).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import Request

from hivectl.auth import policy, tokens
from hivectl.auth.principal import Principal
from hivectl.daemon.envelope import ApiError
from hivectl.daemon.peer import PEER_KEY
from hivectl.errors import HivectlError

log = logging.getLogger("hivectld.security")


def principal_of(request: Request) -> Principal:
    """The principal of ``request`` (401 ``unauthorized`` if it has none)."""
    header = request.headers.get("authorization", "")
    scheme, _, bearer = header.partition(" ")
    if header and scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer TOKEN'")
    if bearer.strip():
        return tokens.authenticate(Path(request.app.state.root), bearer.strip())
    uid = request.scope.get(PEER_KEY)
    if uid is None:
        raise ApiError(401, "unauthorized", "a bearer token is required over TCP")
    return Principal.for_uid(int(uid))


def authorize(request: Request, principal: Principal, role: str, path: str, operation: str = "",
              arguments: dict[str, Any] | None = None) -> None:
    """Refuse (403 ``forbidden``) unless ``principal`` holds ``role`` on ``path`` or above it; a refusal of
    an operation is recorded in the audit log first."""
    vm_dir = Path(request.app.state.root)  # the directory, also for a ZFS vm_dir (as the CLI: Store.root)
    try:
        policy.authorize(vm_dir, principal, role, path)
    except HivectlError as error:
        if operation:
            _record_refusal(vm_dir, principal, operation, arguments or {}, str(error))
        raise


def role_on(request: Request, principal: Principal, path: str) -> str | None:
    """The role ``principal`` holds on ``path`` (None: none), as ``authorize`` decides it: what the web UI
    asks (``GET /1.0/whoami``) to show only the buttons the caller may use."""
    return policy.role_on(Path(request.app.state.root), principal, path)


def _record_refusal(vm_dir: Path, principal: Principal, operation: str, arguments: dict[str, Any],
                    message: str) -> None:
    from hivectl.journal import audit
    from hivectl.journal.who import describe

    config_dir = vm_dir / ".config"
    if not config_dir.is_dir():
        return
    try:
        audit.refused(str(config_dir), operation, arguments, message, who=describe(principal))
    except OSError as error:  # the refusal still stands; the log's failure is the daemon's to report
        log.error("audit log: %s", error)
