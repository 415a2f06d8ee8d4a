"""The audit log and its one seam: every change, by whom, with which arguments and what result.

A record is ``{"seq", "time", "who", "operation", "target", "arguments", "result", "message"}``:
``operation`` is the name of the operation in ``hivectl.api`` (and so in the catalog the daemon serves),
``target`` the list of resource paths it acted on, ``arguments`` the call's arguments with every secret
replaced by ``(hidden)``, ``result`` ``ok``, ``error`` (with the one-line message the CLI prints) or
``refused`` (with its reason: the daemon's 403, a refusal of the rights model inside a change, whatever
front end asked, and a command run through sudo or doas that the invoking user's grants do not allow).

The seam is :func:`perform`, which runs a change and writes its line. The Python API passes every method
that changes something through it (:func:`audit_methods`, applied once to ``hivectl.api.Hivectl``), and the
daemon calls the API, so its requests pass there too, under the principal the daemon set
(``hivectl.journal.who.acting_as``); the command line passes each command that changes something through
it once, in ``hivectl.cli.main``. Nested calls (an API method calling another) write one line, the outer one.
"""

from __future__ import annotations

import contextvars
import os

from hivectl.errors import SECRET_KEYS
from hivectl.journal import audit_path, now
from hivectl.journal.log import Journal
from hivectl.journal.who import acting_as, current

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

HIDDEN = "(hidden)"
# Parameter names whose value is a secret wherever they appear (the catalog marks the API's own).
SECRET_NAMES = frozenset({*SECRET_KEYS, "password", "secret", "token", "bearer"})
# Sub-actions of commands that carry --dry-run for their siblings but only read (as tests/ops/ knows them).
READ_ONLY_ACTIONS = frozenset({"list", "show", "find", "info"})

_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("hivectl_audit_depth", default=0)


def journal(config_dir: str) -> Journal:
    return Journal(audit_path(config_dir), mode=0o600)


def is_secret(name: str, secrets: frozenset[str] = frozenset()) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered in secrets or "password" in lowered or "secret" in lowered


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """``value`` with every secret hidden: dict entries and ``KEY=VALUE`` words whose key is a secret."""
    if isinstance(value, dict):
        return {str(k): HIDDEN if is_secret(str(k), secrets) else redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        if "\n" in value:  # a configuration text: each line a word
            return "\n".join(redact(line, secrets) for line in value.split("\n"))
        key, sep, _ = value.partition("=")
        if sep and is_secret(key.strip(), secrets):
            return f"{key}={HIDDEN}"
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)  # paths and the like: their text


def record(config_dir: str, operation: str, targets: list[str], arguments: dict[str, Any], result: str,
           message: str = "", who: dict[str, Any] | None = None, secrets: frozenset[str] = frozenset()) -> int:
    """Append one audit line (OSError if the log cannot be written)."""
    line: dict[str, Any] = {"time": now(), "who": who if who is not None else current(), "operation": operation,
                            "target": targets, "arguments": redact(arguments, secrets), "result": result}
    if message:
        line["message"] = message
    return journal(config_dir).append(line)


def targets_of(operation: str, arguments: dict[str, Any]) -> list[str]:
    """The resource paths an operation acts on, from its arguments (the paths roles are granted on)."""
    kind = "switches" if operation.startswith("switch") else (
        "datastores" if operation.startswith("datastore") else "guests")
    names: list[str] = []
    for key in ("names", "name", "guest", "source"):
        value = arguments.get(key)
        if isinstance(value, str) and value:
            names.append(value)
            break
        if isinstance(value, (list, tuple)) and value:
            names.extend(str(v) for v in value)
            break
    return [f"/{kind}/{name}" for name in names] or ["/"]


def perform(config_dir: Callable[[], str], operation: str, arguments: dict[str, Any], action: Callable[[], T],
            failed: Callable[[T], str] | None = None, secrets: frozenset[str] = frozenset(),
            on_log_error: Callable[[OSError], None] | None = None) -> T:
    """Run the change ``action`` and write its audit line (and the event it implies) when it returns or
    raises. ``failed(result)`` may turn a returned value into an error message (the CLI's exit status).
    The line is written only where the vm_dir has a ``.config`` directory (an uninitialised vm_dir has no
    log to write to); a log that cannot be written is reported to ``on_log_error``, never hidden from it.
    """
    depth = _DEPTH.get()
    token = _DEPTH.set(depth + 1)
    try:
        result = action()
    except BaseException as error:
        _DEPTH.reset(token)
        if depth == 0:
            _write(config_dir, operation, arguments, _result(error), _message(error), secrets, on_log_error)
        raise
    _DEPTH.reset(token)
    if depth == 0:
        message = failed(result) if failed is not None else ""
        _write(config_dir, operation, arguments, "error" if message else "ok", message, secrets, on_log_error)
    return result


def refused(config_dir: str, operation: str, arguments: dict[str, Any], message: str,
            who: dict[str, Any] | None = None, secrets: frozenset[str] = frozenset(),
            targets: list[str] | None = None) -> int | None:
    """Write the line of a request refused before anything ran (the daemon's 403, the command line's check
    of a sudo/doas invoker); ``targets`` are the paths the check was made on (default: the operation's,
    from its arguments). None when the vm_dir has no log (no ``.config``) or it cannot be written: the
    refusal itself stands either way."""
    if not os.path.isdir(config_dir):
        return None
    try:
        return record(config_dir, operation, targets or targets_of(operation, arguments), arguments, "refused",
                      message, who, secrets)
    except OSError:
        return None


def _result(error: BaseException) -> str:
    """``refused`` for a refusal of the rights model (``hivectl.auth.errors.Forbidden``, known here by its
    code: journal imports nothing above ``errors``), else ``error``."""
    return "refused" if getattr(error, "code", None) == "forbidden" else "error"


def _message(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text


def _write(config_dir: Callable[[], str], operation: str, arguments: dict[str, Any], result: str, message: str,
           secrets: frozenset[str], on_log_error: Callable[[OSError], None] | None) -> None:
    try:
        directory = config_dir()
    except Exception:  # no vm_dir to speak of (the change failed for that reason): no log
        return
    if not os.path.isdir(directory):
        return
    who = current()
    targets = targets_of(operation, arguments)
    try:
        record(directory, operation, targets, arguments, result, message, who, secrets)
        if result == "ok":
            from hivectl.journal.events import after_change

            after_change(directory, operation, targets, who)
    except OSError as error:
        if on_log_error is not None:
            on_log_error(error)


def audit_methods(cls: type, hide: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None) -> None:
    """Pass every public method of ``cls`` that takes ``dry_run`` (the ones that change something) through
    :func:`perform`; a call with ``dry_run=True`` changes nothing and is not recorded. ``cls`` instances
    give their ``.config`` directory through ``_config_dir()``; ``hide(operation, arguments)`` hides what
    the operation's own description marks secret (the catalog's ``redact``) before :func:`redact` runs."""
    for name, function in list(vars(cls).items()):
        if name.startswith("_") or not callable(function):
            continue
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        parameters = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        if "dry_run" not in parameters:
            continue
        setattr(cls, name, _audited(function, name, parameters[1:], hide))


def _audited(function: Callable[..., Any], operation: str, parameters: tuple[str, ...],
             hide: Callable[[str, dict[str, Any]], dict[str, Any]] | None) -> Callable[..., Any]:
    run, acting = perform, acting_as

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = dict(zip(parameters, args, strict=False)) | kwargs
        if arguments.get("dry_run"):
            return function(self, *args, **kwargs)
        arguments.pop("dry_run", None)
        if hide is not None:
            arguments = hide(operation, arguments)
        principal = getattr(self, "_principal", None)  # ``Hivectl(principal=...)``: the daemon's caller
        if principal is None:
            return run(self._config_dir, operation, arguments, lambda: function(self, *args, **kwargs))
        with acting(principal):
            return run(self._config_dir, operation, arguments, lambda: function(self, *args, **kwargs))

    # Rebuilt with the method's own module globals (the closure carries everything it uses): doctest and
    # documentation tools take a function for part of the module whose globals it has.
    import types  # types is already loaded by the interpreter; importing it here costs a dict lookup

    wrapper = types.FunctionType(method.__code__, function.__globals__, function.__name__, None,
                                 method.__closure__)
    wrapper.__qualname__ = function.__qualname__
    wrapper.__doc__ = function.__doc__
    wrapper.__module__ = function.__module__
    wrapper.__annotations__ = function.__annotations__
    wrapper.__wrapped__ = function  # type: ignore[attr-defined]  # inspect.signature follows it
    return wrapper
