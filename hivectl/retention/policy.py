"""A retention policy and its one grammar: ``keep-last=3,keep-daily=7`` or the same as options.

The string form is Proxmox's ``prune-backups`` value (the Proxmox VE manual, "Backup Retention":
``vzdump 777 --prune-backups keep-last=3,keep-daily=13,keep-yearly=9``): comma-separated
``keep-RULE=N``, each rule at most once, N a whole number from 1 (a rule with 0 is the same as leaving it
out, and is refused so that a typo does not silently keep nothing of that kind). ``keep-all`` alone
keeps everything, as an empty policy does. The command-line form is one ``--keep-RULE N`` option per
rule (``hivectl snapshot prune``, ``hivectl retention explain``); both build the same :class:`Policy`,
whose :meth:`Policy.text` is the canonical string.
"""

from __future__ import annotations

from hivectl.errors import ConfigError

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
"""The options in the order they are applied (Proxmox's order)."""
MAX_COUNT = 1_000_000  # far beyond any real schedule; bounds what a typo can ask for


class Policy:
    """How many of each kind to keep: ``counts`` maps a rule of :data:`RULES` to N (absent: not used)."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        counts = dict(counts or {})
        unknown = [rule for rule in counts if rule not in RULES]
        if unknown:
            raise ValueError(f"unknown retention rule {unknown[0]!r}")
        self.counts = {rule: counts[rule] for rule in RULES if rule in counts}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and other.counts == self.counts

    def __hash__(self) -> int:
        return hash(tuple(self.counts.items()))

    def __repr__(self) -> str:
        return f"Policy({self.text()!r})"

    @property
    def keeps_all(self) -> bool:
        """No rule given: everything is kept (Proxmox's ``keep-all``)."""
        return not self.counts

    def text(self) -> str:
        """The canonical string: the rules in order of application, or ``keep-all``."""
        return ",".join(f"keep-{rule}={n}" for rule, n in self.counts.items()) or "keep-all"


def check_count(source: str | None, key: str, value: str) -> int:
    """A rule's N: a whole number from 1 to :data:`MAX_COUNT` (error names the source, key and value)."""
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise ConfigError(source, key, value, "expected a whole number of items to keep (1 or more)")
    count = int(text)
    if not 1 <= count <= MAX_COUNT:
        raise ConfigError(source, key, value, f"expected a number from 1 to {MAX_COUNT}")
    return count


def parse_policy(text: str, source: str | None = None, key: str = "retention") -> Policy:
    """Parse ``keep-RULE=N[,keep-RULE=N...]`` (or ``keep-all``); ``source``/``key`` name where it came
    from (a file and its key, or ``None`` for the command line) in the error."""
    words = [word.strip() for word in text.split(",")]
    if words == ["keep-all"]:
        return Policy()
    counts: dict[str, int] = {}
    for word in words:
        name, eq, value = word.partition("=")
        rule = name[5:] if name.startswith("keep-") else ""
        if not eq or rule not in RULES:
            raise ConfigError(source, key, text, f"{word!r} is not keep-RULE=N (RULE one of {', '.join(RULES)}; "
                                                 "or keep-all alone)")
        if rule in counts:
            raise ConfigError(source, key, text, f"keep-{rule} is given twice")
        counts[rule] = check_count(source, f"{key}: keep-{rule}", value)
    return Policy(counts)


def policy_from_options(values: dict[str, str | int | None]) -> Policy:
    """The policy of command-line options (``{"daily": "7", ...}``, None for an option not given)."""
    counts = {rule: check_count(None, f"--keep-{rule}", str(value)) for rule, value in values.items()
              if value is not None}
    return Policy(counts)
