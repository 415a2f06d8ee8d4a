"""Authentication and authorization of every request: the one place the daemon asks hivectl.auth.

The interface agreed with the ``auth`` helper (issue 11.4):

* ``hivectl.auth.principal.Principal(uid, token_id, name)``: who is calling (a frozen dataclass);
* ``hivectl.auth.tokens.authenticate(vm_dir, bearer) -> Principal``, raising code ``unauthorized`` (401);
* ``hivectl.auth.policy.authorize(vm_dir, principal, role, path) -> None``, raising code ``forbidden`` (403).

A unix-socket peer without a bearer token is the principal of its uid (``peer.PEER_KEY``); over TCP a
bearer token is required. Until ``hivectl/auth/`` lands, a placeholder stands in for it here: uid 0 over
the unix socket is admin, everything else is refused (the auth helper's modules replace it, found by
import; nothing else in the daemon changes).
"""

from __future__ import annotations

import importlib
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from hivectl.daemon.envelope import ApiError
from hivectl.daemon.peer import PEER_KEY


@dataclass(frozen=True)
class _PlaceholderPrincipal:
    """Stands in for hivectl.auth.principal.Principal until it lands (same fields, same order)."""

    uid: int | None
    token_id: str | None
    name: str


def _auth_module(name: str) -> Any:
    try:
        return importlib.import_module(f"hivectl.auth.{name}")
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.startswith("hivectl.auth"):
            return None
        raise


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def principal_of(request: Request) -> Any:
    """The principal of ``request`` (401 ``unauthorized`` if it has none)."""
    vm_dir = request.app.state.vm_dir
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    uid = request.scope.get(PEER_KEY)
    if bearer:
        tokens = _auth_module("tokens")
        if tokens is None:
            raise ApiError(401, "unauthorized", "bearer tokens are not available on this daemon yet")
        return tokens.authenticate(Path(vm_dir), bearer)
    if uid is None:
        raise ApiError(401, "unauthorized", "a bearer token is required over TCP")
    principal_module = _auth_module("principal")
    if principal_module is not None:
        return principal_module.Principal(uid, None, _user_name(uid))
    return _PlaceholderPrincipal(uid, None, _user_name(uid))


def authorize(request: Request, principal: Any, role: str, path: str) -> None:
    """Refuse (403 ``forbidden``) unless ``principal`` holds ``role`` on ``path`` or above it."""
    policy = _auth_module("policy")
    if policy is not None:
        policy.authorize(Path(request.app.state.vm_dir), principal, role, path)
        return
    # Placeholder until hivectl/auth/ lands: root over the unix socket is admin, nobody else is anything.
    if principal.uid != 0 or principal.token_id is not None:
        raise ApiError(403, "forbidden", f"{principal.name}: no {role} role on {path}")
