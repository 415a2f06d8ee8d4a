"""A ``Host`` whose commands run inside a Linux network namespace (``ip netns exec NS ...``).

Network namespaces are how the switch code is tested for real without touching the machine's own
interfaces, and how a whole hivectl network (bridges, taps, NAT, DHCP) can be kept apart from the host's.
Wrapping ``Host.run`` keeps the planners unaware of it: every argv they produce runs unchanged inside the
namespace, and a daemon started there (dnsmasq) stays there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hivectl.errors import UsageError
from hivectl.host.base import Host, Result
from hivectl.host.local import LocalHost
from hivectl.patterns import Pattern

_NETNS_RE = Pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class NetnsHost(Host):
    """Runs every command of ``inner`` (default: this machine) inside the namespace ``netns``."""

    def __init__(self, netns: str, inner: Host | None = None) -> None:
        if not _NETNS_RE.fullmatch(netns):
            raise UsageError(f"{netns!r} is not a usable network namespace name")
        self.netns = netns
        self.inner = inner or LocalHost(platform="linux")
        self.platform = "linux"
        self.root = self.inner.root

    def run(self, argv: Sequence[str], *, check: bool = True, input_text: str | None = None,
            timeout: float | None = None, env: Mapping[str, str] | None = None) -> Result:
        return self.inner.run(["ip", "netns", "exec", self.netns, *argv], check=check, input_text=input_text,
                              timeout=timeout, env=env)
