"""QEMU's option strings (``driver,key=value,...``): quoting and assembly.

QEMU splits option strings at commas and reads ``,,`` as a literal comma, so any value that comes from
outside (a path under vm_dir, a share name) is doubled-comma escaped; otherwise a path containing a comma
would silently become a second option.
"""

from __future__ import annotations

from collections.abc import Iterable

Props = list[tuple[str, str]]


def escape(value: str) -> str:
    """One option value, safe inside a comma-separated QEMU option string."""
    return value.replace(",", ",,")


def join(head: str, props: Iterable[tuple[str, str]] = ()) -> str:
    """``head,key=value,...``; an empty value renders as ``key=`` (e.g. ``romfile=``: no option ROM)."""
    parts = [escape(head)]
    parts.extend(f"{key}={escape(value)}" for key, value in props)
    return ",".join(parts)


def props_text(props: Iterable[tuple[str, str]]) -> str:
    """``key=value,...`` for options that have no leading word (``-drive``, ``-vnc`` suffixes)."""
    return ",".join(f"{key}={escape(value)}" for key, value in props)
