"""Issue 11's Done-means for the consoles: headless Chromium, a real hivectld, a real QEMU tiny guest.

The browser opens the serial console page before the guest runs, starts the guest through the API with
its token, and must then show the guest's own ready line in xterm.js and run a command typed into it;
the VNC page must show a canvas that is not blank; the guest is stopped from the page. Over the same
daemon a ticket used twice and a websocket from a foreign Origin are refused.

The guest has no NIC (so no network namespace is needed: the daemon, QEMU and the browser share the
host's loopback) and boots its kernel directly (PVH), with ``graphics=yes``: QEMU's VGA shows the
kernel's text, which is what makes the canvas non-blank.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Browser, WebDaemon, serve_web, stop_web, ws_client

websockets_exceptions = pytest.importorskip("websockets.exceptions")

READY = "HIVECTL-GUEST-READY"


@pytest.fixture(scope="module")
def qemu_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDaemon]:
    """hivectld (TLS on TCP) on a QEMU vm_dir holding the tiny guest's templates."""
    import tinyguest
    from tests.e2e.conftest import qemu_processes
    from tinyguest.templates import hivectl_template

    artifacts = tinyguest.build()
    base = Path(tmp_path_factory.mktemp("wq", numbered=True))  # short: QEMU's sockets live in vm_dir
    vm_dir = base / "vm"
    vm_dir.mkdir()
    (base / "rc.conf").write_text("")
    env = {**os.environ, "HIVECTL_VM_DIR": str(vm_dir), "HIVECTL_RC_CONF": str(base / "rc.conf"),
           "HIVECTL_PLATFORM": "linux", "HIVECTL_DRIVER": "qemu", "HIVECTL_QEMU_ACCEL": "tcg"}
    env.pop("HIVECTL_HOST_ROOT", None)
    env.pop("SIMHOST_ROOT", None)
    from tests.cli_helpers import HIVECTL

    initialised = subprocess.run([*HIVECTL, "init"], env=env, capture_output=True, text=True, check=False)
    assert initialised.returncode == 0, initialised.stderr
    web = serve_web(vm_dir, base, env=env)
    try:
        (vm_dir / ".templates" / "tinyweb.conf").write_text(
            hivectl_template(artifacts, switch=None, disk_size="64M") + 'graphics="yes"\n')
        made = web.hivectl("create", "-t", "tinyweb", "q1")
        assert made.returncode == 0, made.stderr
        yield web
    finally:
        web.hivectl("poweroff", "q1")
        stop_web(web)
        for pid in qemu_processes(vm_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


def api(browser: Browser, method: str, path: str) -> Any:
    """A call made by the page itself, with its token (as the web UI makes them)."""
    return browser.eval(f"""fetch({path!r}, {{method: {method!r}, headers: {{Authorization:
        'Bearer ' + sessionStorage.getItem('hivectl.token')}}}}).then(r => r.json().then(b => [r.status, b]))""")


def wait_text(browser: Browser, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        shown = browser.terminal_text()
        if text in shown:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the browser's terminal within {timeout} s:\n{shown[-1500:]}\n"
                                 f"page: {browser.eval('window.hivectlConsole.state')} {browser.console[-10:]}")
        time.sleep(0.2)


def websocket(web: WebDaemon, kind: str, issued: str, origin: str) -> Any:
    context = ssl.create_default_context(cafile=str(web.cert))
    url = f"wss://{web.origin.removeprefix('https://')}/1.0/guests/q1/console/ws?type={kind}"
    return ws_client.connect(url, ssl=context, additional_headers={"Origin": origin}, open_timeout=20,
                             subprotocols=["hivectl.console", f"hivectl.ticket.{issued}"])


def test_browser_consoles_of_a_real_qemu_guest(qemu_web: WebDaemon, tmp_path: Path) -> None:
    browser = Browser(tmp_path)
    try:
        browser.login(qemu_web)
        browser.open(qemu_web.url("/ui/console.html?guest=q1&type=serial"))
        browser.wait_for("window.hivectlConsole.state.phase === 'waiting'", timeout=30)  # q1 is stopped
        status, body = api(browser, "POST", "/1.0/guests/q1/start")
        assert status == 202, body
        # The page connects once q1 runs; the guest's own ready line arrives through the websocket.
        wait_text(browser, READY, timeout=120)
        browser.eval("window.hivectlConsole.term.focus()")
        browser.type_text("echo web-$((6*7))\n")
        wait_text(browser, "web-42", timeout=30)

        browser.open(qemu_web.url("/ui/console.html?guest=q1&type=vnc"))
        browser.wait_for("window.hivectlConsole.state.phase === 'open'", timeout=30)
        deadline = time.monotonic() + 30
        while (colours := browser.canvas_colours("#screen canvas")) < 2:
            assert time.monotonic() < deadline, f"the VNC canvas stayed blank ({colours} colours)"
            time.sleep(0.3)
        browser.screenshot(tmp_path / "vnc.png")

        # A ticket is good once; a foreign Origin is refused even with a fresh ticket.
        with qemu_web.client() as client:
            issued = client.post("/1.0/guests/q1/console", params={"type": "vnc"}).json()["metadata"]["ticket"]
            with websocket(qemu_web, "vnc", issued, qemu_web.origin) as ws:
                assert ws.recv(timeout=20).startswith(b"RFB 003.008")
            with pytest.raises(websockets_exceptions.InvalidStatus) as again:
                websocket(qemu_web, "vnc", issued, qemu_web.origin)
            assert again.value.response.status_code == 403
            fresh = client.post("/1.0/guests/q1/console", params={"type": "serial"}).json()["metadata"]["ticket"]
            with pytest.raises(websockets_exceptions.InvalidStatus) as foreign:
                websocket(qemu_web, "serial", fresh, "https://evil.example")
            assert foreign.value.response.status_code == 403

        status, body = api(browser, "POST", "/1.0/guests/q1/stop")
        assert status == 202, body
        status, done = api(browser, "GET", f"{body['operation']}/wait?timeout=60")
        assert status == 200 and done["metadata"]["status"] == "Success", done
        browser.wait_for("window.hivectlConsole.state.phase === 'closed'", timeout=30)  # the VNC socket ended
        from tests.e2e.conftest import qemu_processes

        assert qemu_processes(qemu_web.vm_dir) == []
    finally:
        browser.close()
