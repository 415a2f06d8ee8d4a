"""``hivectl/host/process.fork_detached``, how ``start`` makes a supervisor: what the child is given (its own
session, ``/``, the null device on 0-2, only the kept descriptor, the given environment, the body's exit
status) and that a process with threads never forks (it would hand the child locks held for ever).

Each case runs in a fresh interpreter: pytest itself (and xdist) may run threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, sys
from hivectl.host import process

read_end, write_end = os.pipe()
stray = os.open(os.devnull, os.O_RDONLY)  # inheritable or not, it must not reach the child
os.set_inheritable(stray, True)

def body():
    facts = {"sid_is_pid": os.getsid(0) == os.getpid(), "cwd": os.getcwd(),
             "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
             "stdin": os.readlink("/proc/self/fd/0"), "env": dict(os.environ)}
    os.write(write_end, json.dumps(facts).encode())
    return 7

pid = process.fork_detached(body, env={"ONLY": "this"}, keep_fds=(write_end,))
os.close(write_end)
data = b""
while chunk := os.read(read_end, 65536):
    data += chunk
_, status = os.waitpid(pid, 0)
facts = json.loads(data)
facts["status"] = os.waitstatus_to_exitcode(status)
facts["write_end"] = write_end
facts["parent_sid_is_pid"] = os.getsid(0) == os.getpid()
print(json.dumps(facts))
"""

THREADED = r"""
import os, threading, time
from hivectl.errors import HivectlError
from hivectl.host import process

assert process.single_threaded()
stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()
try:
    assert not process.single_threaded()
    try:
        process.fork_detached(lambda: 0, env={})
    except HivectlError as error:
        print("refused:", error)
finally:
    stop.set()
    worker.join()
assert process.single_threaded()
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def test_the_forked_child_gets_a_session_null_stdio_only_its_pipe_and_the_given_environment() -> None:
    done = run(CHILD)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["status"] == 7, "the child leaves with the body's status"
    assert facts["sid_is_pid"] and not facts["parent_sid_is_pid"]
    assert facts["cwd"] == "/"
    assert facts["stdin"] == os.devnull
    # 0-2, the kept write end, and the descriptor listdir opened on /proc/self/fd: nothing else (the
    # read end, the stray descriptor and whatever the interpreter had open were closed).
    assert len(facts["fds"]) == 5 and {0, 1, 2, facts["write_end"]} <= set(facts["fds"]), facts["fds"]
    assert facts["env"] == {"ONLY": "this"}


def test_a_process_with_threads_is_refused_the_fork() -> None:
    done = run(THREADED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: fork_detached: this process runs several threads"), done.stdout


DETACHED = r"""
import json, os, sys, time
from hivectl.errors import HivectlError
from hivectl.host import process

read_end, write_end = os.pipe()
os.set_inheritable(write_end, True)
stray = os.open(os.devnull, os.O_RDONLY)
os.set_inheritable(stray, True)  # inheritable, but not passed: it must not reach the program
program = ("import json, os; fd = int(os.environ['FD']); "
           "os.write(fd, json.dumps({'ppid': os.getppid(), 'pid': os.getpid(), "
           "'sid_is_pid': os.getsid(0) == os.getpid(), "
           "'cwd': os.getcwd(), 'fds': sorted(int(f) for f in os.listdir('/proc/self/fd')), "
           "'stdio': [os.readlink(f'/proc/self/fd/{n}') for n in range(3)], "
           "'env': open('/proc/self/environ').read().split(chr(0))[:-1]}).encode())")  # as exec'd: before PEP 538
pid = process.spawn_detached([sys.executable, "-I", "-c", program], env={"FD": str(write_end)}, pass_fds=(write_end,))
os.close(write_end)
data = b""
while chunk := os.read(read_end, 65536):
    data += chunk
facts = json.loads(data)
facts.update(returned=pid, me=os.getpid(), write_end=write_end, stray=stray)
try:
    os.waitpid(pid, os.WNOHANG)
    facts["my_child"] = True
except ChildProcessError:
    facts["my_child"] = False
# Nothing of it is left for this process to reap: the middle process was reaped by spawn_detached.
try:
    os.waitpid(-1, os.WNOHANG)
    facts["children_left"] = True
except ChildProcessError:
    facts["children_left"] = False
for argv in (["/nonexistent/program"], ["no-such-program-anywhere"], [os.devnull]):
    try:
        process.spawn_detached(argv, env={"PATH": "/usr/bin:/bin"})
    except HivectlError as error:
        facts.setdefault("errors", []).append(str(error))
print(json.dumps(facts))
"""


def test_a_detached_spawn_is_not_the_callers_child_and_reports_what_cannot_run() -> None:
    done = run(DETACHED)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["pid"] == facts["returned"], "spawn_detached returns the program's own pid"
    assert facts["ppid"] != facts["me"] and not facts["my_child"], "the program is not the caller's child"
    assert not facts["children_left"], "the middle process was reaped"
    assert facts["sid_is_pid"] and facts["cwd"] == "/"
    assert facts["stdio"] == [os.devnull] * 3
    assert len(facts["fds"]) == 5 and {0, 1, 2, facts["write_end"]} <= set(facts["fds"]), facts["fds"]
    assert facts["env"] == [f"FD={facts['write_end']}"]
    assert facts["errors"] == ["cannot run /nonexistent/program: No such file or directory",
                               "no-such-program-anywhere: command not found",
                               f"cannot run {os.devnull}: Permission denied"], facts["errors"]
