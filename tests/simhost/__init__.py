"""The simulated FreeBSD host: stateful stand-ins for the FreeBSD tools hivectl drives.

The machines that run the test suite are Linux, so the real ``bhyve``, ``ifconfig`` or ``zfs`` are not
there. Each module here reimplements one tool's command-line grammar, exit codes and visible state
(``$SIMHOST_ROOT/state.json``) closely enough that a command line the stand-in accepts is one real
FreeBSD accepts too. The references are the FreeBSD manual pages and source files each module's docstring names.

This ``__init__`` stays empty on purpose: the ``bin/`` wrappers import exactly one tool module, and
anything imported here would slow every simulated command down.
"""
