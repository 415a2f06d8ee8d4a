"""The middle process of a double fork: start a program that is nobody's child but init's, then exit.

Why: a process with threads (hivectld, an API user's program) must not fork(2) and go on running Python
(``process.single_threaded``), so it starts a detached supervisor as a program (``process.spawn``). That
program was the caller's child for its whole life, and when it exited the caller had to reap it: hivectld
never waits for the supervisors it starts (they outlive the request, and often the daemon), so each one
that ended stayed a zombie of the daemon until Python's subprocess module happened to reap it at a later
spawn. ``process.spawn_detached`` runs this file instead, as
``python3 -I -S detach.py [--unset NAME]... -- PROGRAM ARGS...``; it forks once more, the grandchild
makes its own session and execs ``PROGRAM`` (an absolute path), and this process exits at once. The caller
reaps this short-lived process like any other command; the program is re-parented to init (or the nearest
subreaper), which reaps it when it ends.

Why not reap in the daemon instead: a SIGCHLD handler or thread calling ``waitpid(-1)`` would also take the
exit statuses of the commands the daemon runs itself (``subprocess.run``, whose ``wait`` then finds no child
and reports status 0 for a command that failed); waiting for the recorded pids alone needs a registry and a
poll for processes the daemon otherwise forgets. With the double fork there is nothing to track.

What this prints on standard output, one line: the program's pid once its exec succeeded, or
``error: cannot run PROGRAM: WHY`` (exit status 127) when it did not (an exec error reaches it through a
close-on-exec pipe: end-of-file means the exec happened). The program gets this process's descriptors but
the standard output, which becomes the null device, so the caller's read of that line ends when this
process exits and not when the program does.

This file imports only ``posix`` and ``sys`` (built-in modules loaded before any script runs), like
``waiter.py``: it costs one bare interpreter start.
"""

import posix
import sys


def main(argv: list[str]) -> int:
    words = argv[1:]
    unset = set()
    while len(words) >= 2 and words[0] == "--unset":
        unset.add(words[1].encode())
        words = words[2:]
    if len(words) < 2 or words[0] != "--" or not words[1].startswith("/"):
        posix.write(2, b"usage: detach.py [--unset NAME]... -- /ABSOLUTE/PROGRAM [ARG...]\n")
        return 64  # EX_USAGE, sysexits(3)
    program = words[1:]
    # The interpreter may have added to the environment it was given (PEP 538 sets LC_CTYPE when the
    # locale is C); the caller names what it did not give, and the program does not get it.
    env = {name: value for name, value in posix.environ.items() if name not in unset}
    read_end, write_end = posix.pipe()  # both close-on-exec (PEP 446)
    pid = posix.fork()
    if pid == 0:
        try:
            posix.close(read_end)
            null = posix.open("/dev/null", posix.O_WRONLY)
            posix.dup2(null, 1)
            posix.close(null)
            posix.setsid()
            posix.execve(program[0], program, env)
        except OSError as error:
            posix.write(write_end, str(error.errno or 0).encode())
        finally:
            posix._exit(127)
    posix.close(write_end)
    said = b""
    while chunk := posix.read(read_end, 64):
        said += chunk
    posix.close(read_end)
    if said:
        posix.waitpid(pid, 0)
        posix.write(1, f"error: cannot run {program[0]}: {posix.strerror(int(said))}\n".encode())
        return 127
    posix.write(1, f"{pid}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
