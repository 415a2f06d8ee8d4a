"""What a command run through sudo or doas needs, from the operations catalog (hivectl/catalog.py).

The catalog is the one list of operations with their roles and resource paths (the daemon authorizes
with it too), so the command line asks it instead of keeping its own table: the command (and its
subcommand) names the operation, the operation's target parameter names the guests, switches or
datastores on the command line. A command the catalog does not know, or whose target is not found on
the command line, needs ``admin`` on ``/``: never less than the catalog would ask.
"""

from __future__ import annotations

from typing import Any


def operation_of(command: str, namespace: object) -> str:
    """The catalog's name of ``command`` with these parsed arguments (``snapshot``, ``switch_create``)."""
    name = command.replace("-", "_")
    action = getattr(namespace, "action", None)
    if isinstance(action, str):
        name = f"{name}_{action.replace('-', '_')}"
    return name


def needs(command: str, namespace: object) -> list[tuple[str, str]]:
    """``(role, path)`` pairs the invoking user must hold for ``command`` with these parsed arguments."""
    from hivectl import catalog

    operation = catalog.by_name().get(operation_of(command, namespace))
    if operation is None:
        return [("admin", "/")]
    if operation.target is None:
        return [(operation.role, "/")]
    value: Any = getattr(namespace, operation.target, None)
    if value is None and operation.target == "name":
        value = getattr(namespace, "names", None)  # the command line takes several where the API takes one
    if not value:
        return [("admin", "/")]
    return [(operation.role, path) for path in operation.resources({operation.target: value})]
