"""A small HTTP file server on 127.0.0.1 for download tests: Range requests, and a way to cut a transfer.

It runs in a thread of the test process and serves one directory. ``cut_after[name] = N`` makes the next
GET of ``name`` send its headers (with the full length) but close the connection after N body bytes, the
way a dropped network connection looks to a client. Every request is recorded for assertions.

Validators are served as a real server does: a strong ``ETag`` derived from the content and a
``Last-Modified`` from the file's mtime (``validators`` picks which), and ``If-Range`` is honoured
(RFC 9110 section 13.1.5: a validator that no longer matches makes the server ignore ``Range`` and send
the whole file with ``200``) unless ``honour_if_range`` is off, the way a broken server behaves.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class FileServer:
    root: Path
    base_url: str
    cut_after: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    if_ranges: list[str | None] = field(default_factory=list)  # the If-Range header of each request
    validators: tuple[str, ...] = ("etag", "last-modified")
    honour_if_range: bool = True

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


def _handler(server_state: FileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            server_state.requests.append((name, self.headers.get("Range")))
            path = server_state.root / name
            if "/" in name or not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
            modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
            if_range = self.headers.get("If-Range")
            server_state.if_ranges.append(if_range)
            start = 0
            status = 200
            match = re.fullmatch(r"bytes=([0-9]+)-", self.headers.get("Range") or "")
            current = {"etag": etag, "last-modified": modified}
            if (match and if_range is not None and server_state.honour_if_range
                    and if_range not in [current[v] for v in server_state.validators]):
                match = None  # the file changed since the client's copy started: send all of it
            if match and not server_state.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if "etag" in server_state.validators:
                self.send_header("ETag", etag)
            if "last-modified" in server_state.validators:
                self.send_header("Last-Modified", modified)
            self.end_headers()
            cut = server_state.cut_after.pop(name, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def fileserver(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "www"
    root.mkdir()
    state = FileServer(root, "")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
