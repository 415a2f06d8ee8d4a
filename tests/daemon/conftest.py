"""A real hivectld on the simulated FreeBSD host, driven over its unix socket.

``daemon`` starts ``bin/hivectld`` as its own process (the ``host`` fixture's vm_dir: initialised, with a
``public`` switch; the simulated host's tools first on PATH) and hands the test an ``httpx.Client`` whose
transport is the socket. At teardown the daemon gets SIGTERM and must exit within seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the daemon extra (pip install -e .[dev]) is not installed")

REPO = Path(__file__).resolve().parents[2]
HIVECTLD = [sys.executable, str(REPO / "bin" / "hivectld")]


@dataclass
class Daemon:
    process: subprocess.Popen[str]
    socket: Path
    client: Any  # httpx.Client
    log: Path
    vm_dir: Path
    simhost: Any = None  # the simulated host it runs on (tests.simhost.fixture.SimHost)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, **kw)

    def wait_op(self, location: str, timeout: float = 30) -> dict[str, Any]:
        reply = self.client.get(f"{location}/wait", params={"timeout": timeout}, timeout=timeout + 10)
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()["metadata"]
        return result


def start_daemon(vm_dir: Path, socket_path: Path, *extra: str, env: dict[str, str] | None = None) -> Daemon:
    log = socket_path.parent / "hivectld.log"
    out = open(log, "w")  # noqa: SIM115 - kept open for the daemon's lifetime
    process = subprocess.Popen([*HIVECTLD, "--vm-dir", str(vm_dir), "--socket", str(socket_path), *extra],
                               stdout=out, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 30
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://hivectld",
                          timeout=30)
    while True:
        if process.poll() is not None:
            raise AssertionError(f"hivectld exited with {process.returncode}:\n{log.read_text()}")
        if socket_path.exists():
            try:
                if client.get("/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"hivectld did not answer within 30 s:\n{log.read_text()}")
        time.sleep(0.05)
    return Daemon(process, socket_path, client, log, vm_dir)


def stop_daemon(daemon: Daemon) -> None:
    daemon.client.close()
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
        try:
            daemon.process.wait(15)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait()
            raise AssertionError(f"hivectld ignored SIGTERM:\n{daemon.log.read_text()}") from None


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon on one simulated host for a whole test module (its start costs seconds on a busy
    machine); the tests sharing it use guest names of their own. Set up as the ``host`` fixture does."""
    from tests.simhost.fixture import SimHost, enter_simulated_host

    base = tmp_path_factory.mktemp("daemon")
    with pytest.MonkeyPatch.context() as mp:
        root = enter_simulated_host(base, mp)
        from tests.cli_helpers import init_vm_dir

        vm_dir = init_vm_dir(base, mp)
        sockets = Path(tempfile.mkdtemp(prefix="hd", dir="/tmp"))
        started = start_daemon(vm_dir, sockets / "d.sock")
        simulated = SimHost(root)
        started.simhost = simulated
        try:
            yield started
        finally:
            stop_daemon(started)
            simulated.close()
            shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (a unix socket's path is limited to 104 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="hd", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(host: Any, short_dir: Path) -> Iterator[Daemon]:
    started = start_daemon(host.vm_dir, short_dir / "d.sock")
    started.simhost = host
    try:
        yield started
    finally:
        stop_daemon(started)
