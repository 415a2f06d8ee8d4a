"""The catalog of operations: the one list of what hivectl can do that every front end exposes.

The daemon (``hivectld``, one endpoint per entry), the ssh remotes and the Ansible modules all read this
list instead of keeping a table of their own, so an operation added to the Python API reaches every front
end at once and none of them can drift from it. The list is *derived* from ``hivectl.api.Hivectl``: each
public method is one operation, its parameters come from its signature and type hints, its summary from its
docstring (issue 9: "every endpoint is one operation of ``hivectl.api``, never a second implementation").

What a signature cannot tell is stated here once, as rules with a few named exceptions:

* **changes something**: the method takes ``dry_run`` (every mutating method of ``Hivectl`` does);
* **asynchronous**: it can take over a second (boots, shutdowns, copies, downloads, archives): ``ASYNC``;
* **role** (issue 11.4, the Proxmox model): ``viewer`` for reads, ``operator`` for ``OPERATOR``, ``admin``
  for every other change;
* **resource path** the role is checked on: ``/guests/{name}``, ``/switches/{name}``,
  ``/datastores/{name}`` or ``/`` for host-wide operations, found from the method's name and its first
  parameter; an operation whose path cannot be found is an error at import, not a silent ``/``;
* **secrets**: parameters whose value may be a secret (``errors.SECRET_KEYS``: VNC passwords) are marked
  and ``redact`` hides them, so that no log, event or audit line shows one.

Two methods do two things depending on an argument (``iso``/``img``: list without ``url``, download with
it); each becomes two operations with their own role and asynchrony, both calling the one method.
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
import types
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hivectl.api import Hivectl
from hivectl.errors import HIDDEN, SECRET_KEYS

ROLES = ("viewer", "operator", "admin")  # each role includes the ones before it

# Operations an operator may run (issue 11.4: "operator (start, stop, console, snapshot)").
OPERATOR = frozenset({"start", "stop", "restart", "reset", "poweroff", "console", "snapshot", "suspend", "resume"})

# Operations that can take over a second: the daemon runs them in the background (202 and an operation).
ASYNC = frozenset({
    "start", "install", "stop", "restart", "reset", "poweroff", "startall", "stopall", "suspend", "resume",
    "suspendall", "resumeall",
    "create", "clone", "backup", "restore", "rollback", "import_guest", "migrate",
    "iso_download", "img_download", "image_create", "image_provision", "image_destroy",
    "replicate_run_due", "promote",
})

# Parameters whose whole value may hold a secret: a configuration text may set vnc_password.
SECRET_PARAMS = frozenset({"text"})


class CatalogError(Exception):
    """The API has a method the rules above cannot place (no resource path): a programming error."""


@dataclass(frozen=True)
class Param:
    """One parameter of an operation, from the method's signature."""

    name: str
    type: Any  # the resolved type hint (``str | None``, ``list[str]``, ``bool`` ...)
    default: Any  # ``inspect.Parameter.empty`` when required
    required: bool
    secret: bool  # never logged or echoed
    variadic: bool = False  # ``**keys``: a mapping of names to strings (secret where the name is a SECRET_KEY)

    @property
    def type_text(self) -> str:
        """The type as text (``str | None``, ``list[str]``)."""
        return _type_text(self.type)


@dataclass(frozen=True)
class Operation:
    """One operation: what a front end needs to expose, authorize and log a ``Hivectl`` method."""

    name: str  # unique; the method's name, or method_variant for the split ones
    method: str  # the ``Hivectl`` method it calls
    summary: str  # first line of the method's docstring
    doc: str
    params: tuple[Param, ...]  # without ``self`` and ``dry_run``
    returns: Any  # the resolved return type hint
    mutating: bool  # takes ``dry_run``
    asynchronous: bool
    role: str  # viewer | operator | admin
    path: str  # the resource the role is checked on: "/", "/guests/{name}", ...
    target: str | None  # the parameter that fills the path's ``{name}`` (None for "/")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def resources(self, args: dict[str, Any]) -> list[str]:
        """The concrete resource paths ``args`` touch (``/guests/web1``; one per name of a list)."""
        if self.target is None:
            return ["/"]
        value = args.get(self.target)
        values = value if isinstance(value, list | tuple) else [value]
        kind = self.path.split("/")[1]
        return [f"/{kind}/{guest_of(str(v)) if kind == 'guests' else v}" for v in values if v is not None] or ["/"]


def guest_of(spec: str) -> str:
    """The guest a ``NAME`` or ``NAME@SNAP`` spec names."""
    return spec.split("@", 1)[0]


# Resource kinds by the method's name prefix; the target is the method's first parameter.
_PREFIXES = (("switch_", "switches"), ("datastore_", "datastores"))
# Guest operations whose first parameter names the guest ("name", a NAME@SNAP "spec", or a list "names").
_GUEST_TARGETS = ("name", "names", "spec")
# Host-wide operations (path "/") whose first parameter is not a guest, or that have none.
_HOST_WIDE = frozenset({
    "init", "templates", "template_show", "guests", "settings", "set_settings", "version", "passthru",
    "autostart_list", "tags_find", "iso", "img", "restore", "image_list", "image_create", "image_provision",
    "image_destroy", "startall", "stopall", "suspendall", "resumeall", "datastore_list", "switch_list",
    "switch_info", "switch_init",
    "import_guest", "retention_explain", "metrics", "events", "audit",
    "replicate_list", "replicate_status", "replicate_run_due",
    # Access (docs/security.md): host-wide here; hivectl/ops/access.py checks the actor's rights on the
    # grant's own path and on the token's owner besides.
    "token_create", "token_list", "token_revoke", "acl_grant", "acl_revoke", "acl_list",
    "tenant_create", "tenant_list", "tenant_destroy", "tenant_rules",
    "remote_add", "remote_list", "remote_remove",  # this host's list of other hosts (docs/remotes.md)
})
# image_create's first parameter is the guest the image is made of: its path is that guest.
_GUEST_OVERRIDES = {"image_create": "name", "autostart_add": "names", "autostart_remove": "names"}


def _resource(method: str, params: list[inspect.Parameter]) -> tuple[str, str | None]:
    first = params[0].name if params else None
    if method in _GUEST_OVERRIDES:
        return "/guests/{name}", _GUEST_OVERRIDES[method]
    if method in _HOST_WIDE:
        return "/", None
    for prefix, kind in _PREFIXES:
        if method.startswith(prefix) and first == "name":
            return f"/{kind}/{{name}}", "name"
    if first in _GUEST_TARGETS:
        return "/guests/{name}", first
    raise CatalogError(f"hivectl.api.Hivectl.{method}: no resource path (first parameter {first!r}): "
                       "add it to hivectl/catalog.py's rules")


def _type_text(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not typing.get_args(tp) else str(tp).replace("typing.", "")


def _wire_type(tp: Any) -> Any:
    """``tp`` as it travels in JSON: ``Path`` is a string (``str | Path | None`` becomes ``str | None``)."""
    if tp is Path:
        return str
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members: list[Any] = []
        for arg in args:
            wire = _wire_type(arg)
            if wire not in members:
                members.append(wire)
        return functools.reduce(operator.or_, members)
    return tp


# Reads only admins may make: the audit log (issue 11.5, "the daemon serves it to admins").
ADMIN_READS = frozenset({"audit"})


def _role(name: str, mutating: bool) -> str:
    if name in OPERATOR:
        return "operator"
    if name in ADMIN_READS:
        return "admin"
    return "admin" if mutating else "viewer"


def _public_methods() -> list[str]:
    return sorted(n for n, v in vars(Hivectl).items() if not n.startswith("_") and inspect.isfunction(v))


def _operation(method: str, name: str | None = None, **overrides: Any) -> Operation:
    function = getattr(Hivectl, method)
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    raw = [p for p in signature.parameters.values() if p.name != "self"]
    mutating = any(p.name == "dry_run" for p in raw)
    params = tuple(
        Param(p.name, dict[str, str] if p.kind is inspect.Parameter.VAR_KEYWORD else _wire_type(hints.get(p.name, Any)),
              p.default, p.default is inspect.Parameter.empty
              and p.kind is not inspect.Parameter.VAR_KEYWORD,
              p.name in SECRET_PARAMS, p.kind is inspect.Parameter.VAR_KEYWORD)
        for p in raw if p.name != "dry_run")
    doc = inspect.getdoc(function) or ""
    if not doc:
        raise CatalogError(f"hivectl.api.Hivectl.{method}: no docstring (the catalog's summary)")
    path, target = _resource(method, raw)
    name = name or method
    fields: dict[str, Any] = {
        "name": name, "method": method, "summary": doc.splitlines()[0], "doc": doc, "params": params,
        "returns": hints.get("return", Any), "mutating": mutating, "asynchronous": name in ASYNC,
        "role": _role(name, mutating), "path": path, "target": target,
    }
    fields.update(overrides)
    return Operation(**fields)


def _variants(method: str) -> list[Operation]:
    """``iso``/``img``: a read (no ``url``) and a download (``url`` required), as two operations."""
    download = _operation(method, f"{method}_download")
    params = tuple(replace(p, type=str, required=True, default=inspect.Parameter.empty) if p.name == "url" else p
                   for p in download.params)
    # Listing ignores every argument (it shows the files of every store of that kind).
    listing = _operation(method, f"{method}_list", params=(), mutating=False, role="viewer", asynchronous=False,
                         returns=list[dict[str, Any]])
    return [listing, replace(download, params=params, returns=list[list[str]])]


_SPLIT = frozenset({"iso", "img"})


@functools.cache
def operations() -> tuple[Operation, ...]:
    """Every operation, in the order of their names (built once, from ``Hivectl``)."""
    found: list[Operation] = []
    for method in _public_methods():
        if method in _SPLIT:
            found.extend(_variants(method))
        else:
            found.append(_operation(method))
    names = [op.name for op in found]
    if len(set(names)) != len(names):
        raise CatalogError(f"two operations share a name: {sorted(n for n in names if names.count(n) > 1)}")
    return tuple(sorted(found, key=lambda op: op.name))


def by_name() -> dict[str, Operation]:
    """The operations keyed by name."""
    return {op.name: op for op in operations()}


def get(name: str) -> Operation:
    """One operation by name; ``KeyError`` naming it when there is none."""
    try:
        return by_name()[name]
    except KeyError:
        raise KeyError(f"no operation {name!r} in hivectl's catalog") from None


def covers(role: str, needed: str) -> bool:
    """True when ``role`` includes ``needed`` (admin ⊇ operator ⊇ viewer)."""
    return ROLES.index(role) >= ROLES.index(needed)


_SECRET_ASSIGNMENT = re.compile(rf"^(\s*(?:{'|'.join(map(re.escape, SECRET_KEYS))})\w*=).*$", re.M)


def redact_text(text: str) -> str:
    """A configuration text with every secret key's value replaced by ``(hidden)``."""
    return _SECRET_ASSIGNMENT.sub(rf'\g<1>"{HIDDEN}"', text)


def _secret_key(key: str) -> bool:
    return key in SECRET_KEYS or key.startswith(SECRET_KEYS)


def redact(operation: Operation, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` fit for a log, an event or an audit line: secret values replaced by ``(hidden)``."""
    shown: dict[str, Any] = {}
    for key, value in args.items():
        try:
            param: Param | None = operation.param(key)
        except KeyError:
            param = None
        if param is not None and param.secret:
            shown[key] = HIDDEN if value is not None else None
        elif param is not None and param.variadic and isinstance(value, dict):
            shown[key] = {k: HIDDEN if _secret_key(k) else v for k, v in value.items()}
        elif param is None and _secret_key(key):  # a ``**keys`` entry passed flat
            shown[key] = HIDDEN
        else:
            shown[key] = value
    return shown


# Parameters whose value is a whole file's text (line breaks allowed; a NUL still is not).
MULTILINE_PARAMS = frozenset({"text"})


def check_value(operation: Operation, key: str, value: Any, multiline: bool = False) -> None:
    """The edge check the CLI makes on its argv (``safety.text.argv_words``), for arguments that came
    as data: every string one line of valid UTF-8 text, in lists and mappings too; ``ConfigError`` naming
    the operation, the key and the value (hidden when secret) otherwise."""
    from hivectl.errors import ConfigError
    from hivectl.safety.text import LINE_BREAKS, first_break

    if isinstance(value, list | tuple):
        for item in value:
            check_value(operation, key, item, multiline)
        return
    if isinstance(value, dict):
        for sub, item in value.items():
            check_value(operation, key, sub, multiline)
            check_value(operation, sub if isinstance(sub, str) else key, item, multiline)  # a **keys entry
        return
    if not isinstance(value, str):
        return
    shown = HIDDEN if key in SECRET_PARAMS else value
    bad = ("\0" if "\0" in value else None) if multiline else first_break(value)
    if bad is not None:
        raise ConfigError(f"{operation.name} request", key, shown, f"values cannot contain {LINE_BREAKS[bad]}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{operation.name} request", key, shown, "values must be valid UTF-8 text") from None


def invoke(hivectl: Hivectl, operation: Operation, args: dict[str, Any], dry_run: bool = False) -> Any:
    """Call ``operation``'s method on ``hivectl`` with ``args`` (by name; ``**keys`` given as one mapping).

    Unknown or missing arguments are a ``UsageError`` naming them, as the CLI's parser would refuse them.
    """
    from hivectl.errors import UsageError

    known = {p.name: p for p in operation.params}
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise UsageError(f"{operation.name}: unknown argument(s): {', '.join(unknown)}")
    missing = [p.name for p in operation.params if p.required and args.get(p.name) is None]
    if missing:
        raise UsageError(f"{operation.name}: missing argument(s): {', '.join(missing)}")
    if dry_run and not operation.mutating:
        raise UsageError(f"{operation.name}: changes nothing, so it has no dry run")
    for name, value in args.items():
        check_value(operation, name, value, multiline=name in MULTILINE_PARAMS)
    call: dict[str, Any] = {}
    for name, value in args.items():
        if known[name].variadic:
            call.update(value or {})
        else:
            call[name] = value
    if operation.mutating:
        call["dry_run"] = dry_run
    return getattr(hivectl, operation.method)(**call)
