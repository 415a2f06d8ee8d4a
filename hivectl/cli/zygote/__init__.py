"""The start-up server ("zygote"): hivectl imported once, a forked child per command.

Every ``hivectl`` command pays an interpreter and the hundred-odd hivectl modules it imports before it
does anything (benchmarks/README.md, "start, third pass": about 0.1 s of CPU for a ``start``, against a
target of 50 ms). ``hivectl-zygote`` (``python3 -m hivectl.cli.zygote``) imports the command line and every
module it may need once, listens on a unix socket, and forks a child per request that runs
``hivectl.cli.main.main`` exactly as the command line would, with the caller's credentials, directory,
environment, umask and standard descriptors. ``bin/hivectl`` asks it first and falls back to running
in-process whenever it is absent, refuses, or runs other code than the launcher would import
(docs/architecture.md, "The zygote").

This module holds only what the launcher's client and the server share (names, the wire format), so that
the client imports nothing else of hivectl; neither imports ``__future__`` (half a millisecond, paid by
every command line).
"""

SOCKET_ENV = "HIVECTL_ZYGOTE_SOCKET"
"""The zygote's socket path for the launcher (and the server's default); ``off`` disables the zygote."""
DEFAULT_SOCKET = "/var/run/hivectl/zygote.sock"
"""Where the zygote listens when neither ``--socket`` nor ``HIVECTL_ZYGOTE_SOCKET`` says otherwise: the
host's run directory (on Linux /var/run is /run)."""
MAGIC = b"HVZ1"
"""The first bytes of a request: the protocol's version (a client of another version is refused)."""
STALE_STATUS = 75
"""A child's exit status when it declined because hivectl's files changed (EX_TEMPFAIL, sysexits(3)):
the server then re-execs itself to load the new code."""
DECLINED_STATUS = 76
"""A child's exit status when it declined for any other reason (EX_PROTOCOL): the server logs it as
``declined``, so its log tells the commands it ran from those the launcher ran itself."""
FIRST_ANSWER_TIMEOUT = 10.0
"""Seconds the client waits for the child's first answer before it runs the command itself. Safe under
any load: the child runs the command only after the client's ``go``, so a late child never runs it too."""


def socket_path(environ: dict[str, str] | None = None) -> str | None:
    """The socket the launcher should try (``None``: the zygote is switched off by ``HIVECTL_ZYGOTE_SOCKET=off``)."""
    import os

    value = (os.environ if environ is None else environ).get(SOCKET_ENV, "")
    if value == "off":
        return None
    return value or DEFAULT_SOCKET
