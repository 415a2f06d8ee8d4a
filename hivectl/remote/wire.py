"""What travels over the ssh session: one JSON request line in, one JSON answer line out.

A request is ``{"hivectl": 1, "kind": "call", "op": NAME, "args": {...}, "dry_run": false}`` (an operation of
hivectl/catalog.py, run with ``catalog.invoke``), ``{"hivectl": 1, "kind": "cli", "argv": [...]}`` (a whole
command line, for ``hivectl -H NAME COMMAND ...``) or ``{"hivectl": 1, "kind": "stream", "words": [...]}``
(``hivectl _stream``: byte pipes, hivectl/remote/streams.py). The answer to a call is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code", "message", "exit_status", ...}}``: the
error's machine-readable code (the daemon's words: docs/api.md) and the one line the CLI would print; the
local side raises the matching local exception type with that line, prefixed by the remote's name.
"""

from __future__ import annotations

import json
from typing import Any

from hivectl.errors import ConfigError, Conflict, HivectlError, NotFound, UsageError, error_code, error_line

VERSION = 1
KINDS = ("call", "cli", "stream")
ERROR_MARK = "hivectl-error: "  # a stream's failure, on its stderr: the mark, then the error object as JSON


def request(kind: str, **fields: Any) -> bytes:
    return (json.dumps({"hivectl": VERSION, "kind": kind, **fields}, separators=(",", ":")) + "\n").encode()


def decode_request(line: bytes) -> dict[str, Any]:
    """The request of one line; ``UsageError`` for anything that is not one of ours."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UsageError("_serve: the request is not one line of JSON") from None
    if not isinstance(data, dict) or data.get("hivectl") != VERSION or data.get("kind") not in KINDS:
        raise UsageError(f"_serve: not a hivectl {VERSION} request (is the remote's hivectl another version?)")
    return data


def code_of(error: BaseException) -> str:
    """The error's code, in the daemon's vocabulary (``hivectl.errors.error_code``, as the daemon's)."""
    return error_code(error)


def error_object(error: BaseException) -> dict[str, Any]:
    status = getattr(error, "exit_status", 1) if isinstance(error, HivectlError) else 1
    found: dict[str, Any] = {"code": code_of(error), "message": error_line(error), "exit_status": status}
    if isinstance(error, ConfigError):
        found.update(source=error.source, key=error.key, value=error.value, why=error.why)
    return found


def answer(result: Any = None, error: BaseException | None = None) -> bytes:
    body = {"ok": False, "error": error_object(error)} if error is not None else {"ok": True, "result": result}
    return (json.dumps(body, default=str, separators=(",", ":")) + "\n").encode()


class RemoteError(HivectlError):
    """An error raised on a remote (or in reaching it): its code, and its one line after ``REMOTE: ``."""

    def __init__(self, remote: str, code: str, message: str, exit_status: int = 1) -> None:
        self.remote = remote
        self.code = code
        self.remote_message = message
        self.exit_status = exit_status
        HivectlError.__init__(self, f"{remote}: {message}")


class RemoteNotFound(RemoteError, NotFound):
    """A guest, switch, datastore... the remote does not have."""


class RemoteConflict(RemoteError, Conflict):
    """The remote refused: running, taken, locked."""


class RemoteUsageError(RemoteError, UsageError):
    """The remote found the request itself wrong (exit status 2, as locally)."""


class RemoteInvalid(RemoteError, ConfigError):
    """A value the remote refused, with the file, key and value it named."""

    def __init__(self, remote: str, code: str, message: str, exit_status: int = 1, *, source: str = "",
                 key: str = "", value: str = "", why: str = "") -> None:
        RemoteError.__init__(self, remote, code, message, exit_status)
        self.source, self.key, self.value, self.why = source, key, value, why


class RemoteUnreachable(RemoteError):
    """ssh could not reach the remote or log in (``code`` "unreachable")."""


_TYPES: dict[str, type[RemoteError]] = {"not_found": RemoteNotFound, "conflict": RemoteConflict,
                                        "usage": RemoteUsageError, "unreachable": RemoteUnreachable}


def raise_error(remote: str, error: dict[str, Any]) -> None:
    """Raise the local exception for an error object of the wire."""
    code = str(error.get("code") or "failed")
    message = str(error.get("message") or "failed")
    status = error.get("exit_status")
    status = status if isinstance(status, int) and status in (1, 2) else (2 if code == "usage" else 1)
    if code == "invalid":
        raise RemoteInvalid(remote, code, message, status, source=str(error.get("source") or ""),
                            key=str(error.get("key") or ""), value=str(error.get("value") or ""),
                            why=str(error.get("why") or ""))
    raise _TYPES.get(code, RemoteError)(remote, code, message, status)


def decode_answer(remote: str, text: str) -> Any:
    """The result of an answer line; the remote's error raised as a local one."""
    try:
        body = json.loads(text)
    except ValueError:
        raise RemoteError(remote, "failed", "the remote's answer is not JSON (is its hivectl too old?)") from None
    if not isinstance(body, dict) or "ok" not in body:
        raise RemoteError(remote, "failed", "the remote's answer is not a hivectl answer")
    if not body["ok"]:
        raise_error(remote, body.get("error") or {})
    return body.get("result")
