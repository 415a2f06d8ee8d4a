"""Remotes: other hosts' hivectl over ssh (issue 12, item 1; docs/remotes.md).

``connect(where, name)`` gives a :class:`Remote` for a remote recorded with ``hivectl remote add``;
``where`` is this host's vm_dir (a path), its ``Store``, or a ``Context``. ``Remote.call(op, args,
dry_run)`` runs one operation of hivectl/catalog.py there, ``Remote.stream(words)`` gives byte pipes to
``hivectl _stream WORDS`` there (sub-commands registered in hivectl/remote/streams.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivectl.remote.client import Remote, Streams
from hivectl.remote.wire import (
    RemoteConflict,
    RemoteError,
    RemoteInvalid,
    RemoteNotFound,
    RemoteUnreachable,
    RemoteUsageError,
)

__all__ = ["Remote", "RemoteConflict", "RemoteError", "RemoteInvalid", "RemoteNotFound", "RemoteUnreachable",
           "RemoteUsageError", "Streams", "config_dir_of", "connect", "remotes"]


def config_dir_of(where: Any) -> Path:
    """The ``.config`` directory of a vm_dir path, a ``Store`` (``config_dir``) or a ``Context`` (``store``)."""
    if isinstance(where, str | Path):
        return Path(where) / ".config"
    store = getattr(where, "store", where)
    config_dir = getattr(store, "config_dir", None)
    if not isinstance(config_dir, Path):
        raise TypeError(f"connect(): expected a vm_dir path, a Store or a Context, not {type(where).__name__}")
    return config_dir


def _host(where: Any) -> Any:
    host = getattr(where, "host", None) if not isinstance(where, str | Path) else None
    if host is None:
        from hivectl.host.local import LocalHost

        host = LocalHost()
    return host


def connect(where: Any, name: str) -> Remote:
    """The remote ``name`` of this host (``NotFound`` if ``hivectl remote add`` never recorded it)."""
    from hivectl.remote import config

    return Remote(config.get(config_dir_of(where), name), _host(where))


def remotes(where: Any) -> list[Remote]:
    """Every remote of this host, by name."""
    from hivectl.remote import config

    found = config.load(config_dir_of(where))
    host = _host(where)
    return [Remote(found[n], host) for n in sorted(found)]
