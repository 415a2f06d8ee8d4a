"""Regular expressions compiled on first use, not at import.

A module-level ``re.compile`` runs in every command that imports the module, used or not: the start path
imported about 60 of them (and ``re`` itself), a few milliseconds of CPU of the 50 ms ``hivectl start``
may spend before its hypervisor runs (issue 9.7; benchmarks/README.md, "start, third pass"). A
``Pattern`` keeps its source and compiles it (importing ``re``) the first time it matches, once per
process. Flags are written inline (``(?m)``, ``(?i)``), so defining one needs no ``re`` constant.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy treats the name alike)
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterator


class Pattern:
    """A regular expression compiled when first used; the methods are ``re.Pattern``'s."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        """The compiled expression (compiled now if this is its first use)."""
        if self._compiled is None:
            import re

            self._compiled = re.compile(self.source)
        return self._compiled

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self.compiled().fullmatch(text)

    def match(self, text: str) -> re.Match[str] | None:
        return self.compiled().match(text)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled().search(text)

    def findall(self, text: str) -> list[str]:
        return self.compiled().findall(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled().finditer(text)

    def split(self, text: str, maxsplit: int = 0) -> list[str]:
        return self.compiled().split(text, maxsplit)

    def sub(self, replacement: str | Callable[[re.Match[str]], str], text: str, count: int = 0) -> str:
        return self.compiled().sub(replacement, text, count)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def escape(text: str) -> str:
    """``re.escape``, for building a ``Pattern`` from literal text."""
    import re

    return re.escape(text)


def fullmatch(source: str, text: str) -> re.Match[str] | None:
    """``re.fullmatch`` for a one-off expression (``re`` caches what it compiled), importing ``re`` only now."""
    import re

    return re.fullmatch(source, text)


def search(source: str, text: str) -> re.Match[str] | None:
    """``re.search``, importing ``re`` only when called."""
    import re

    return re.search(source, text)


def sub(source: str, replacement: str, text: str) -> str:
    """``re.sub``, importing ``re`` only when called."""
    import re

    return re.sub(source, replacement, text)
