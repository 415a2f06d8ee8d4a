"""The two refusals of the rights model, each with the machine-readable code the daemon answers with.

``code`` follows the error envelope of docs/architecture.md (one code, the CLI's one-line message): the
daemon maps ``unauthorized`` to HTTP 401 and ``forbidden`` to 403. Neither message ever holds a secret:
a bearer token is never echoed, only the id of the token it names.
"""

from __future__ import annotations

from hivectl.errors import HivectlError


class Unauthorized(HivectlError):
    """The request says who it is in a way that cannot be trusted (unknown, malformed, expired token)."""

    code = "unauthorized"


class Forbidden(HivectlError):
    """The principal is known but lacks the role the operation needs on its path."""

    code = "forbidden"
