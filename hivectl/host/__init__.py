"""The one door to the outside world: every external command goes through a ``Host``."""

from hivectl.host.base import CommandFailed, Host, Result
from hivectl.host.local import LocalHost

__all__ = ["CommandFailed", "Host", "LocalHost", "Result"]
