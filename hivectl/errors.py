"""Exception types shared by every layer, each carrying the exit status the CLI reports.

Exit statuses follow the project's contract: 0 success, 1 failure, 2 usage error. Errors are raised
below the CLI and turned into one line on stderr by it, so that no lower layer prints.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: every command imports this module
if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path


class HivectlError(Exception):
    """A failure the user can act on; the message is the whole story in one line."""

    exit_status = 1


class UsageError(HivectlError):
    """The command line itself is wrong (unknown option, missing argument, bad combination)."""

    exit_status = 2


SECRET_KEYS = ("vnc_password",)  # keys whose value is a secret: never shown, files holding one kept 0600
HIDDEN = "(hidden)"  # what an error shows instead of a secret value


class ConfigError(HivectlError):
    """A value in a file or on the command line is invalid.

    Always names where the value came from (a file, or the command line), the key and the value, so that
    an administrator can find and fix it without reading code.
    """

    def __init__(self, source: str | Path | None, key: str, value: str, why: str) -> None:
        self.source = str(source) if source is not None else "command line"
        self.key = key
        # A secret is never echoed, valid or not: this message reaches stderr, 'info' (problems:) and the
        # guest's log, all readable by more people than the 0600 config that holds the password.
        self.value = HIDDEN if key in SECRET_KEYS or key.startswith(SECRET_KEYS) else value
        self.why = why
        shown = self.value if self.value == HIDDEN else repr(value)
        super().__init__(f"{self.source}: {key}={shown}: {why}")


class ValidationErrors(HivectlError):
    """Several invalid values found at once (all reported together, keyed by file and key)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


class NotFound(HivectlError):
    """A named thing (guest, template, switch, datastore) does not exist."""


class Conflict(HivectlError):
    """The operation clashes with current state (guest running, name taken, lock held)."""


def os_error_line(error: OSError) -> str:
    """``PATH: reason`` (``PATH -> OTHER: reason`` for a rename) as the C library says it: how every front
    end (the CLI's one line on stderr, the daemon's error envelope) reports a file it could not use."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    where = str(error.filename) + (f" -> {error.filename2}" if error.filename2 is not None else "")
    return f"{where}: {reason}"



def error_line(error: BaseException) -> str:
    """The one line every front end reports for ``error`` (the CLI after ``hivectl: ``, the daemon's
    envelope, a remote's answer): a ``HivectlError``'s own words, a file's ``os_error_line``, and for
    anything else (a bug) only its type: its details stay in the log of the process that met it."""
    if isinstance(error, HivectlError):
        return str(error)
    if isinstance(error, OSError):
        return os_error_line(error)
    return f"internal error: {type(error).__name__}"


def error_code(error: BaseException, known: Collection[str] | None = None) -> str:
    """The machine-readable code of ``error`` in the daemon's words (docs/api.md): the daemon's envelope and
    a remote's answer (hivectl/remote/wire.py) use this one table, so a code means the same on both.

    A ``HivectlError`` with a ``code`` of its own (``hivectl.auth``'s ``forbidden``, a remote's) keeps it,
    when ``known`` is given only if it is one of those; otherwise the class decides, subclasses first.
    """
    code = getattr(error, "code", None)
    if isinstance(error, HivectlError) and isinstance(code, str) and code and (known is None or code in known):
        return code
    for kind, word in ((NotFound, "not_found"), (Conflict, "conflict"), (ConfigError, "invalid"),
                       (ValidationErrors, "invalid"), (UsageError, "usage"), (HivectlError, "failed")):
        if isinstance(error, kind):
            return word
    if isinstance(error, OSError):  # a file the operation needed (the CLI's one line and exit status 1)
        return "not_found" if isinstance(error, FileNotFoundError) else "failed"
    return "internal"
