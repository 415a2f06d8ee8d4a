"""The supervisor's waiting phase: a tiny program that only waits for the hypervisor, in the same process.

Why: a supervisor spends nearly all of a guest's life blocked in waitpid(2), and the full hivectl package
it needs to set a guest up costs about 11 MiB of private heap per guest. So once the hypervisor runs, the
supervisor (``hivectl/runner/supervisor.py``) execs itself into this file, run as
``python3 -I -S waiter.py --child PID [--trap N,...] -- BACK...``: the same pid, so ``run.lock`` (pid and start
time, ``hivectl/host/identity.py``) stays true and the hypervisor stays its child, whose exact exit status
waitpid(2) still returns. This file imports only ``posix``, ``_signal`` and ``sys``: the built-in C
modules under ``os`` and ``signal``, which the interpreter has loaded before any script runs (``os``
and ``signal`` themselves would pull in ``posixpath``, ``enum``, ``functools`` and ``collections``). With
``-I -S`` keeping ``site``, ``PYTHON*`` variables and the user's site-packages out, the waiter loads no
module a bare ``python3 -I -S -c pass`` does not; a test fails if that changes
(tests/lifecycle/test_waiter.py). docs/architecture.md, "Supervision memory", has the figures.

When the hypervisor exits, the waiter execs ``BACK`` (the full supervisor's command line, whose last
argument is the guest name) with ``--waited exit:STATUS`` inserted before that name; STATUS is
os.waitstatus_to_exitcode's (negative: killed by that signal). The signals of ``--trap`` (those the
full supervisor handles: SIGINT, SIGTERM and SIGHUP in the foreground, ``start -f`` and console=tmux;
SIGINT alone when detached) exec back at once with ``--waited signal:NUM``, and the full supervisor stops
the guest the way it always did (ACPI button, forced power-off, kill) and cleans up. The supervisor blocks
those signals before either exec (execve(2) keeps the signal mask and pending signals), so one that
arrives in between is delivered once the new program has its handler, never lost and never fatal.

The guest name stays the last word of the command line, as ``identity.names_guest`` expects of a
supervisor.
"""

import _signal  # type: ignore[import-not-found]  # signal's C part; typeshed has stubs for signal only
import posix
import sys

SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)


def back(command: list[str], how: str) -> None:
    """Become the full supervisor again, telling it how the wait ended; exit 70 if that cannot run."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, SIGNALS)
    argv = [*command[:-1], "--waited", how, command[-1]]
    try:
        posix.execv(argv[0], argv)
    except OSError as error:
        # Nothing left to supervise with: the run goes stale and the next start/stop clears it.
        posix.write(2, f"hivectl waiter: cannot run {argv[0]}: {error.strerror}\n".encode())
        posix._exit(70)


def main(args: list[str]) -> None:
    """Parse ``--child PID [--trap N,...] -- BACK...`` (written by the supervisor only), then wait."""
    split = args.index("--")
    options, command = args[:split], args[split + 1:]
    child = int(options[options.index("--child") + 1])
    trap = options[options.index("--trap") + 1].split(",") if "--trap" in options else []
    for number in trap:
        _signal.signal(int(number), lambda signum, _frame: back(command, f"signal:{signum}"))
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, SIGNALS)
    while True:
        try:
            pid, status = posix.waitpid(child, 0)
        except ChildProcessError:
            back(command, "lost")  # not our child (cannot happen after the supervisor's exec): say so
            return
        if pid == child:
            back(command, f"exit:{posix.waitstatus_to_exitcode(status)}")
            return


if __name__ == "__main__":
    main(sys.argv[1:])
