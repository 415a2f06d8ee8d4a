"""The console page in headless Chromium, on the simulated host: xterm.js over the ticketed websocket.

The guest's nmdm B side is a real pseudo-terminal (as in test_console_tickets.py): what the "guest" writes
on it must appear in the browser's terminal, and what is typed into the page must arrive there.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tests.web.conftest import Browser, WebDaemon, read_until


def test_serial_console_page(sim_web: WebDaemon, browser: Browser, vendor: Any,
                             serial_guest: tuple[str, int]) -> None:
    name, guest_side = serial_guest
    browser.login(sim_web)
    browser.open(sim_web.url(f"/ui/console.html?guest={name}&type=serial"))
    browser.wait_for("window.hivectlConsole.state.phase === 'open'", timeout=30)
    os.write(guest_side, b"\r\nFreeBSD/amd64 (t1) (ttyu0)\r\n\r\nlogin: ")
    deadline = time.monotonic() + 20
    while "login:" not in browser.terminal_text():
        assert time.monotonic() < deadline, browser.terminal_text()
        time.sleep(0.1)
    assert "FreeBSD/amd64 (t1) (ttyu0)" in browser.terminal_text()
    browser.type_text("root\n")
    assert b"root\r" in read_until(guest_side, b"root\r")
    # The page without a token gets the daemon's refusal, in words.
    browser.eval("sessionStorage.clear()")
    browser.open(sim_web.url(f"/ui/console.html?guest={name}&type=serial"))
    browser.wait_for("window.hivectlConsole.state.phase === 'error'", timeout=30)
    assert "bearer token is required" in browser.eval("window.hivectlConsole.state.error")
    # ...and asks for one: typed in, it opens the console and is kept for the tab, not in the field.
    assert browser.eval("document.getElementById('login').hidden") is False
    browser.eval("document.getElementById('token').focus()")
    browser.type_text(f"{sim_web.token}\n")
    browser.wait_for("window.hivectlConsole.state.phase === 'open'", timeout=30)
    assert browser.eval("document.getElementById('token').value") == ""
    assert browser.eval("sessionStorage.getItem('hivectl.token')") == sim_web.token
