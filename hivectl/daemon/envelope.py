"""The three response kinds of the API, modelled on Incus's REST API (lxc/incus, doc/rest-api.md).

* sync: ``200 {"type": "sync", "status": "Success", "status_code": 200, "metadata": ...}``;
* async: ``202 {"type": "async", "status": "Operation Created", "status_code": 100, "operation":
  "/1.0/operations/ID", "metadata": {the operation}}`` with ``Location: /1.0/operations/ID``;
* error: ``4xx/5xx {"type": "error", "error_code": N, "error": "...", "code": "..."}``, where ``error`` is
  the one line the CLI prints after ``hivectl: `` and ``code`` a machine-readable word (Incus has only the
  number; a client should not parse English to tell "not found" from "running").

The status codes of operations are Incus's (100 created ... 200 Success, 400 Failure, 401 Cancelled).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hivectl.errors import HivectlError, error_code, error_line

T = TypeVar("T")

# Operation status codes (Incus doc/rest-api.md, "Status codes").
STATUS = {"Operation Created": 100, "Running": 103, "Cancelling": 104, "Pending": 105, "Success": 200,
          "Failure": 400, "Cancelled": 401}


class Sync(BaseModel, Generic[T]):
    """A synchronous answer: the operation ran to completion; ``metadata`` is its result."""

    type: Literal["sync"] = "sync"
    status: Literal["Success"] = "Success"
    status_code: Literal[200] = 200
    metadata: T


class OperationInfo(BaseModel):
    """A background operation, as ``GET /1.0/operations/ID`` shows it."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    class_: Literal["task"] = Field("task", alias="class")
    description: str  # the catalog operation's name
    created_at: str
    updated_at: str
    status: Literal["Pending", "Running", "Cancelling", "Success", "Failure", "Cancelled"]
    status_code: int
    resources: dict[str, list[str]]  # {"guests": ["/1.0/guests/web1"]}
    metadata: dict[str, Any]  # {"progress": {...}} while running, {"result": ...} once done
    may_cancel: bool
    err: str  # the error line when status is Failure ("" otherwise)
    code: str  # the machine-readable error code when status is Failure ("" otherwise)
    location: str  # the path of this operation


class Async(BaseModel):
    """The operation was started in the background; poll, wait on or cancel ``operation``."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["async"] = "async"
    status: Literal["Operation Created"] = "Operation Created"
    status_code: Literal[100] = 100
    operation: str
    metadata: OperationInfo


class Error(BaseModel):
    """A refusal or a failure: ``error`` is the CLI's one-line message, ``code`` a machine-readable word."""

    type: Literal["error"] = "error"
    error_code: int
    error: str
    code: str


class ApiError(HivectlError):
    """An error of the API itself (unknown path, bad method, bad body), with its HTTP status and code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# Error codes that other modules raise with a ``code`` attribute (hivectl.auth), and their HTTP status.
CODE_STATUS = {"unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409, "invalid": 400,
               "usage": 400, "failed": 400, "cancelled": 409, "method_not_allowed": 405, "internal": 500}


def classify(error: BaseException) -> tuple[int, str]:
    """The HTTP status and machine-readable code of an exception.

    The code is ``hivectl.errors.error_code``'s (the one table a remote's answers use too), keeping an
    error's own code only where it has a status here. A ``HivectlError`` not otherwise known is a failure
    the user can act on (the CLI's exit status 1: a host command that failed, a missing vm_dir), 400
    ``failed``; only an exception that is not a ``HivectlError`` (a bug) is a 500.
    """
    if isinstance(error, ApiError):
        return error.status, error.code
    code = error_code(error, CODE_STATUS)
    return CODE_STATUS[code], code


def message(error: BaseException) -> str:
    """The one line the CLI prints for ``error`` (without its ``hivectl: `` prefix)."""
    return error_line(error)  # details of a bug go to the daemon's log, not to the client


def error_body(error: BaseException) -> tuple[int, dict[str, Any]]:
    status, code = classify(error)
    return status, Error(error_code=status, error=message(error), code=code).model_dump()
