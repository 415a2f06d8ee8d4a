"""The supervisor's answer to ``start`` over a FIFO (console=tmux), with real writer processes.

The cases that matter are the ones where the writer does not behave: it never shows up, it dies after
saying hello, or it answers and exits before the reader looks. Each must end promptly, not at the timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivectl.runner import ready

WRITER = """
import os, sys, time
os.environ["HIVECTL_READY_FIFO"] = sys.argv[1]
from hivectl.runner import ready
fd = ready.open_writer()
assert "HIVECTL_READY_FIFO" not in os.environ
if sys.argv[2] != "-":
    time.sleep(float(sys.argv[3]))
    ready.send(fd, sys.argv[2])
"""


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    path = tmp_path / "ready"
    os.mkfifo(path, 0o600)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    yield path, fd
    os.close(fd)


def writer(path: Path, answer: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), answer, str(delay)])


def test_answer_after_hello(fifo: tuple[Path, int]) -> None:
    path, fd = fifo
    proc = writer(path, "ok 4242", 0.3)
    assert ready.await_answer(fd, 20, alive=lambda: proc.poll() is None) == "ok 4242"
    assert proc.wait(10) == 0


def test_writer_that_never_comes_is_noticed_by_liveness(fifo: tuple[Path, int]) -> None:
    _path, fd = fifo
    started = time.monotonic()
    assert ready.await_answer(fd, 20, alive=lambda: time.monotonic() - started < 0.3) == ""
    assert time.monotonic() - started < 3


def test_writer_dying_after_hello_is_end_of_file(fifo: tuple[Path, int]) -> None:
    path, fd = fifo
    proc = writer(path, "-")
    started = time.monotonic()
    assert ready.await_answer(fd, 20, alive=lambda: True) == ""
    assert time.monotonic() - started < 10
    assert proc.wait(10) == 0


def test_answer_left_by_a_writer_that_already_left(fifo: tuple[Path, int]) -> None:
    path, fd = fifo
    proc = writer(path, "error: loader failed")
    assert proc.wait(10) == 0
    assert ready.await_answer(fd, 20, alive=lambda: False) == "error: loader failed"


def test_no_reader_means_no_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A supervisor whose ``start`` gave up (no reader) must not block opening the FIFO."""
    path = tmp_path / "ready"
    os.mkfifo(path, 0o600)
    monkeypatch.setenv(ready.FIFO_ENV, str(path))
    assert ready.open_writer() == -1


def test_pipe_end_of_file_is_final() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"ok 7\n")
    os.close(write_end)
    assert ready.await_answer(read_end, 5) == "ok 7"
    assert ready.await_answer(read_end, 5) == ""
    os.close(read_end)
