"""A guest's resource limits (``limit_*``), read once and checked at the edge.

vm-bhyve's ``lib/vm-rctl`` (``rctl::set``) turns ``limit_pcpu``, ``limit_rbps``, ``limit_wbps``,
``limit_riops`` and ``limit_wiops`` into rctl(8) rules on the bhyve process: ``pcpu:deny=N`` (N percent of
one CPU) and ``readbps``/``writebps``/``readiops``/``writeiops:throttle=N``. hivectl does the same on FreeBSD
(hivectl/runner/limits.py) and, on Linux, makes the same numbers cgroup limits on the QEMU process
(``cpu.max`` or ``cpu.cfs_quota_us``, ``io.max`` or ``blkio.throttle.*``). ``limit_memory`` is hivectl's own:
the cookbook's ``vmemoryuse:deny`` rule (rctl(8)) and ``memory.max``/``memory.limit_in_bytes`` on Linux.

An amount is what rctl(8) takes: a whole number with an optional expand_number(3) suffix (``10M``, ``1G``,
powers of 1024); vm-bhyve passes the value to rctl unchanged, so the same text is valid here.
"""

from __future__ import annotations

from hivectl.errors import ConfigError
from hivectl.model.keyspec import Source
from hivectl.patterns import Pattern
from hivectl.records import fields, record

SUFFIXES = "kmgtpe"  # expand_number(3): k, m, g, t, p, e (either case), powers of 1024
_AMOUNT = Pattern(r"([0-9]{1,19})([kmgtpeKMGTPE]?)")
MAX_AMOUNT = (1 << 63) - 1


def amount(source: Source, key: str, value: str) -> int:
    """``10M`` -> 10485760; refuses anything rctl(8) would not take as an amount (with file, key, value)."""
    match = _AMOUNT.fullmatch(value)
    if not match:
        raise ConfigError(source, key, value, "expected a whole number with an optional k, m, g or t suffix "
                                              "(powers of 1024), as rctl(8) takes it: 10M, 500")
    number = int(match.group(1)) << (10 * (SUFFIXES.index(match.group(2).lower()) + 1) if match.group(2) else 0)
    if number <= 0 or number > MAX_AMOUNT:
        raise ConfigError(source, key, value, "expected an amount from 1 to 2^63-1")
    return number


def check_amount(source: Source, key: str, value: str) -> None:
    """The key table's check for ``limit_rbps`` and the like (hivectl/model/keys.py)."""
    amount(source, key, value)


@record(frozen=True)
class Limits:
    """The limits one guest asks for; None where it sets none."""

    pcpu: int | None = None  # percent of one CPU (rctl pcpu: 100 = one whole CPU)
    rbps: int | None = None  # bytes read per second
    wbps: int | None = None  # bytes written per second
    riops: int | None = None  # read operations per second
    wiops: int | None = None  # write operations per second
    memory: int | None = None  # bytes

    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def io(self) -> bool:
        return any(v is not None for v in (self.rbps, self.wbps, self.riops, self.wiops))

    def keys(self) -> dict[str, int]:
        """The limits set, by config key (``limit_pcpu``...): what ``info`` shows."""
        return {f"limit_{f.name}": getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


KEYS = ("limit_pcpu", "limit_rbps", "limit_wbps", "limit_riops", "limit_wiops", "limit_memory")

# field -> (rctl resource, rctl action), as vm-bhyve's rctl::set writes each rule (memory: the cookbook's)
RCTL = {"pcpu": ("pcpu", "deny"), "rbps": ("readbps", "throttle"), "wbps": ("writebps", "throttle"),
        "riops": ("readiops", "throttle"), "wiops": ("writeiops", "throttle"), "memory": ("vmemoryuse", "deny")}


def of(values: dict[str, str], source: Source) -> Limits:
    """The limits of a config's values; a bad value raises ``ConfigError`` naming the file and key."""
    found: dict[str, int] = {}
    for key in KEYS:
        text = values.get(key, "")
        if not text:
            continue
        number = amount(source, key, text)
        if key == "limit_pcpu" and number > 100000:
            raise ConfigError(source, key, text, "expected a percentage of one CPU from 1 to 100000")
        found[key[len("limit_"):]] = number
    return Limits(**found)


def rctl_rules(limits: Limits, pid: int) -> list[str]:
    """rctl(8) rules for the hypervisor ``pid``: ``process:PID:pcpu:deny=50`` ..., in vm-bhyve's order."""
    return subject_rules(limits, f"process:{pid}")


def subject_rules(limits: Limits, subject: str) -> list[str]:
    """rctl(8) rules for ``subject`` (``process:PID``, or ``jail:NAME`` for a guest in a jail of its own:
    the cookbook's ``rctl -a jail:bhyve-jail:vmemoryuse:deny=8G``), in vm-bhyve's order."""
    rules = []
    for name, (resource, action) in RCTL.items():
        value = getattr(limits, name)
        if value is not None:
            rules.append(f"{subject}:{resource}:{action}={value}")
    return rules
