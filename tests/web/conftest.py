"""The browser test harness: Debian's headless Chromium driven over the DevTools protocol, against a real
hivectld listening on TCP with TLS (the only way a browser reaches it, docs/api.md).

No WebDriver: Chromium's own remote-debugging websocket (the Chrome DevTools Protocol, CDP) is spoken
with the ``websockets`` package the daemon extra already installs, so the harness adds no dependency and
no chromedriver version to keep in step with chromium.

Fixtures and helpers, for the console tests and the web UI's:

* ``sim_web`` (module scope): hivectld on the simulated FreeBSD host (the ``tests/daemon`` set-up: an
  initialised vm_dir with a ``public`` switch, the simulated tools first on PATH), on
  ``https://127.0.0.1:PORT`` with a throw-away certificate; ``.token`` is an admin bearer token,
  ``.make_token(role=..., path=...)`` makes a capped one, ``.hivectl(...)`` runs the CLI on the same host.
* ``browser`` (module scope): a :class:`Browser`. ``open(url)`` loads a page; ``login(web, token)`` puts a
  bearer token where the pages read it (``sessionStorage["hivectl.token"]`` of the daemon's origin);
  ``eval(js)`` and ``wait_for(js)`` run JavaScript (promises awaited); ``terminal_text()`` is what the
  console page's xterm.js shows; ``canvas_colours(selector)`` counts the distinct colours of a canvas
  (a blank one has one); ``type_text()`` sends keystrokes; ``screenshot(path)`` saves a PNG.
* :func:`serve_web` starts such a daemon on any vm_dir (the QEMU test runs it inside a network namespace,
  ``prefix=["nsenter", "--net=...", "--"]``, and the browser with the same ``prefix``).

The static pages are served under ``/ui/`` (``console.html``, the web UI's ``index.html``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the daemon extra (pip install -e .[dev]) is not installed")
ws_client = pytest.importorskip("websockets.sync.client", reason="the daemon extra is not installed")

REPO = Path(__file__).resolve().parents[2]
HIVECTLD = [sys.executable, str(REPO / "bin" / "hivectld")]
TOKEN_KEY = "hivectl.token"  # sessionStorage key the pages read the bearer token from
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the browser is told to accept it)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"openssl could not make a certificate: {made.stderr}")
    return cert, key


@dataclass
class WebDaemon:
    """A hivectld on TCP with TLS (and its unix socket), for a browser."""

    process: subprocess.Popen[str]
    origin: str  # https://127.0.0.1:PORT
    socket: Path
    log: Path
    vm_dir: Path
    cert: Path
    token: str  # an admin's bearer token (root's, uncapped)
    env: dict[str, str]
    prefix: list[str] = field(default_factory=list)
    simhost: Any = None

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def client(self, token: str | None = None) -> Any:
        """An ``httpx.Client`` on the TCP port, with ``token`` (default: the admin's) as its bearer."""
        import ssl

        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.origin, verify=ssl.create_default_context(cafile=str(self.cert)),
                            headers=headers, timeout=60)

    def hivectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The CLI on the daemon's vm_dir (and in its network namespace, if any)."""
        from tests.cli_helpers import HIVECTL

        return subprocess.run([*self.prefix, *HIVECTL, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def make_token(self, role: str = "admin", path: str = "/") -> str:
        made = self.hivectl("token", "create", "--role", role, "--path", path, "--json")
        assert made.returncode == 0, made.stderr
        return str(json.loads(made.stdout)["token"])


def serve_web(vm_dir: Path, workdir: Path, env: dict[str, str] | None = None,
              prefix: Sequence[str] = ()) -> WebDaemon:
    """Start ``bin/hivectld`` on ``vm_dir`` listening on a free TCP port with TLS; wait until it answers."""
    environment = {**os.environ, **(env or {})}
    cert, key = certificate(workdir)
    port = free_port()
    sock = workdir / "d.sock"
    log = workdir / "hivectld.log"
    out = open(log, "w")  # noqa: SIM115 - kept open for the daemon's lifetime
    process = subprocess.Popen([*prefix, *HIVECTLD, "--vm-dir", str(vm_dir), "--socket", str(sock),
                                "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)],
                               stdout=out, stderr=subprocess.STDOUT, text=True, env=environment)
    web = WebDaemon(process, f"https://127.0.0.1:{port}", sock, log, vm_dir, cert, "", environment, list(prefix))
    try:
        web.token = web.make_token()
    except AssertionError:
        process.kill()
        process.wait()
        raise
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"hivectld exited with {process.returncode}:\n{log.read_text()}")
        # The TCP port may be in another network namespace: the unix socket says when the daemon is up.
        with contextlib.suppress(httpx.TransportError), \
                httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://h") as local:
            if sock.exists() and local.get("/").status_code == 200:
                if prefix:
                    break
                with contextlib.suppress(httpx.TransportError), web.client() as client:
                    if client.get("/1.0").status_code == 200:
                        break
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"hivectld did not answer within 60 s:\n{log.read_text()}")
        time.sleep(0.1)
    return web


def stop_web(web: WebDaemon) -> None:
    if web.process.poll() is None:
        web.process.send_signal(signal.SIGTERM)
        try:
            web.process.wait(15)
        except subprocess.TimeoutExpired:
            web.process.kill()
            web.process.wait()


class BrowserError(AssertionError):
    """JavaScript threw, or a page did not become what a test waited for (the page's console attached)."""


class Browser:
    """One headless Chromium with one tab, driven over CDP (a flat session on the tab's target)."""

    def __init__(self, workdir: Path, prefix: Sequence[str] = ()) -> None:
        if CHROMIUM is None:
            pytest.fail("chromium is not installed (scripts/setup installs it)")
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
        self.log = open(workdir / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [*prefix, CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             "--ignore-certificate-errors",  # the daemons' certificates are the tests' own, self-signed
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "--window-size=1280,900",
             "about:blank"], stdout=self.log, stderr=self.log)
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.is_file() and len(active.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"chromium did not start: {(workdir / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.1)
        port, path = active.read_text().splitlines()[:2]
        self.prefix = list(prefix)
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(ws_client.connect(f"ws://127.0.0.1:{port}{path}", max_size=None,
                                                             open_timeout=30))
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.console: list[str] = []  # the page's console messages and uncaught exceptions
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.send(domain, session=True)

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = False,
             timeout: float = 60) -> Any:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"CDP {method}: no answer within {timeout} s")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"CDP {method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def _event(self, event: dict[str, Any]) -> None:
        method = event.get("method", "")
        params = event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            words = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.console.append(f"console.{params.get('type')}: {' '.join(words)}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif len(self.events) < 1000:
            self.events.append(event)

    def open(self, url: str, timeout: float = 60) -> None:
        """Load ``url`` and wait for its ``load`` (ES modules have run by then)."""
        reply = self.send("Page.navigate", {"url": url}, session=True)
        if reply.get("errorText"):
            raise BrowserError(f"{url}: {reply['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout=timeout)

    def eval(self, expression: str, timeout: float = 60) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited); BrowserError if it threw."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True, "timeout": int(timeout * 1000)},
                          session=True, timeout=timeout + 5)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:200]}: {text}\npage console: {self.console[-20:]}")
        return reply.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30, interval: float = 0.1) -> Any:
        """Evaluate ``expression`` until it is truthy; its value. BrowserError (with the page's console and
        the last value) when it never is."""
        deadline = time.monotonic() + timeout
        value: Any = None
        while True:
            with contextlib.suppress(BrowserError):  # a page mid-navigation has no context for a moment
                value = self.eval(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise BrowserError(f"not true within {timeout} s: {expression[:300]} (last value {value!r})\n"
                                   f"page console: {self.console[-30:]}")
            time.sleep(interval)

    def login(self, web: WebDaemon, token: str | None = None, page: str = "/ui/console.html") -> None:
        """Put ``token`` (default the admin's) where the pages read it, for ``web``'s origin."""
        self.open(web.url(page))
        self.eval(f"sessionStorage.setItem({json.dumps(TOKEN_KEY)}, {json.dumps(token or web.token)})")

    def terminal_text(self) -> str:
        """The lines the console page's xterm.js terminal holds (scroll-back included), right-trimmed."""
        return str(self.eval("""(() => {
            const term = window.hivectlConsole && window.hivectlConsole.term;
            if (!term) return '';
            const buffer = term.buffer.active, lines = [];
            for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
            return lines.join('\\n');
        })()"""))

    def canvas_colours(self, selector: str = "canvas") -> int:
        """How many distinct colours the first canvas matching ``selector`` shows (0: no such canvas or an
        empty one; 1: blank)."""
        return int(self.eval(f"""(() => {{
            const canvas = document.querySelector({json.dumps(selector)});
            if (!canvas || !canvas.width || !canvas.height) return 0;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set();
            for (let i = 0; i < data.length && seen.size < 64; i += 4)
                seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            return seen.size;
        }})()"""))

    def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element, key by key (``\\n`` is Enter)."""
        for char in text:
            if char == "\n":
                key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}
            else:
                key = {"key": char, "text": char}
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", **key}, session=True)
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key["key"]}, session=True)

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stack.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    started = Browser(tmp_path_factory.mktemp("browser"))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def sim_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDaemon]:
    """hivectld on the simulated FreeBSD host, over TCP with TLS, for one test module."""
    from tests.simhost.fixture import SimHost, enter_simulated_host

    base = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as mp:
        root = enter_simulated_host(base, mp)
        from tests.cli_helpers import init_vm_dir

        vm_dir = init_vm_dir(base, mp)
        sockets = Path(tempfile.mkdtemp(prefix="hw", dir="/tmp"))  # a unix socket's path is short
        web = serve_web(vm_dir, sockets)
        simulated = SimHost(root)
        web.simhost = simulated
        try:
            yield web
        finally:
            stop_web(web)
            simulated.close()
            shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture(scope="session")
def vendor() -> Path:
    """The npm-built vendor files the console page imports (scripts/build-web: quick when already built)."""
    built = subprocess.run([str(REPO / "scripts" / "build-web")], capture_output=True, text=True, check=False)
    assert built.returncode == 0, f"scripts/build-web failed: {built.stderr or built.stdout}"
    path = REPO / "hivectl" / "daemon" / "static" / "vendor"
    assert (path / "xterm" / "xterm.mjs").is_file() and (path / "novnc" / "core" / "rfb.js").is_file()
    return path


def started(web: WebDaemon, name: str, *keys: str) -> None:
    made = web.hivectl("create", "-t", "default", name)
    assert made.returncode == 0, made.stderr
    conf = web.vm_dir / name / f"{name}.conf"
    values = dict(key.split("=", 1) for key in keys)  # each replaces the template's line, or is added
    lines = [line for line in conf.read_text().splitlines() if line.split("=", 1)[0] not in values]
    conf.write_text("\n".join([*lines, *(f'{k}="{v}"' for k, v in values.items())]) + "\n")
    run = web.hivectl("start", name)
    assert run.returncode == 0, run.stderr
    deadline = time.monotonic() + 30
    while "Running" not in web.hivectl("list").stdout.split(name, 1)[-1].split("\n", 1)[0]:
        assert time.monotonic() < deadline, web.hivectl("list").stdout
        time.sleep(0.2)


@pytest.fixture(scope="module")
def serial_guest(sim_web: WebDaemon) -> Iterator[tuple[str, int]]:
    """A running simulated guest whose nmdm B side is a real pty: (name, the pty master's fd)."""
    started(sim_web, "t1")
    console = (sim_web.vm_dir / "t1" / "console").read_text()
    line = dict(entry.split("=", 1) for entry in console.split())["com1"]
    assert line.startswith("/dev/nmdm"), console
    node = sim_web.simhost.path(line)
    master, replica = os.openpty()
    node.unlink()
    node.symlink_to(os.ttyname(replica))
    try:
        yield "t1", master
    finally:
        os.close(master)
        os.close(replica)


def read_until(fd: int, wanted: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} not seen; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            seen += os.read(fd, 4096)
    return seen
