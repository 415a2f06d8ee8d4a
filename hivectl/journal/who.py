"""Who is acting: the uid, the user behind sudo or doas, or the daemon's token (issue 11, "by whom").

The CLI and the Python API act as the process's own user; ``sudo``/``doas`` leave the invoking user in
``SUDO_USER``/``SUDO_UID`` (sudo(8)) or ``DOAS_USER`` (doas(1)), recorded beside uid 0. The daemon acts
for the principal of each request: it runs the request inside :func:`acting_as`, and every event and
audit line written meanwhile (in that thread or task, through ``contextvars``) names that principal.
"""

from __future__ import annotations

import contextvars
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from typing import Any

_ACTING: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("hivectl_acting", default=None)


def describe(principal: object) -> dict[str, Any]:
    """A principal (``hivectl.auth.principal.Principal`` or anything with ``uid``, ``token_id`` and ``name``
    attributes) as the ``who`` of a log line."""
    who: dict[str, Any] = {"uid": getattr(principal, "uid", None)}
    token = getattr(principal, "token_id", None)
    if token is not None:
        who["token"] = str(token)
    name = getattr(principal, "name", None) or getattr(principal, "display_name", None)
    if name:
        who["user"] = str(name)
    return who


def current() -> dict[str, Any]:
    """The ``who`` of a line written now: the daemon's principal if one is acting, else this process."""
    acting = _ACTING.get()
    if acting is not None:
        return dict(acting)
    who: dict[str, Any] = {"uid": os.getuid()}
    for variable, key in (("SUDO_USER", "sudo_user"), ("DOAS_USER", "doas_user")):
        value = os.environ.get(variable)
        if value:
            who[key] = value
    return who


class acting_as:  # lower case: used like contextlib's context managers
    """``with acting_as(principal): ...``: lines written inside name ``principal`` as their ``who``."""

    def __init__(self, principal: object) -> None:
        self.who = principal if isinstance(principal, dict) else describe(principal)
        self._token: contextvars.Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> dict[str, Any]:
        self._token = _ACTING.set(self.who)
        return self.who

    def __exit__(self, *_exc: object) -> None:
        assert self._token is not None
        _ACTING.reset(self._token)
