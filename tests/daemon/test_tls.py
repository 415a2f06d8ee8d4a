"""hivectld over TCP: TLS only, and a bearer token required (issue 11.4); refused without them."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import hivectl
from tests.daemon.conftest import HIVECTLD, httpx, start_daemon, stop_daemon


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_tcp_needs_tls_and_a_token(host: Any, short_dir: Path) -> None:
    cert, key = short_dir / "cert.pem", short_dir / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"openssl could not make a certificate: {made.stderr}")
    port = free_port()
    # Without a certificate, --listen is refused before anything listens.
    refused = subprocess.run([*HIVECTLD,
                              "--vm-dir", str(host.vm_dir), "--socket", str(short_dir / "x.sock"),
                              "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert refused.returncode == 1 and "TCP is served with TLS only" in refused.stdout + refused.stderr
    daemon = start_daemon(host.vm_dir, short_dir / "d.sock", "--listen", f"127.0.0.1:{port}",
                          "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        token = hivectl("token", "create", "--json")
        assert token.status == 0, token.err
        secret = token.json()["token"]
        tls = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=str(cert)),
                           timeout=30)
        reply = tls.get("/1.0")
        assert reply.status_code == 401 and reply.json()["code"] == "unauthorized", reply.text
        reply = tls.get("/1.0", headers={"Authorization": "Bearer hvt.nosuch.secret"})
        assert reply.status_code == 401 and "secret" not in reply.json()["error"], reply.text
        reply = tls.get("/1.0", headers={"Authorization": f"Bearer {secret}"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["metadata"]["principal"]["uid"] == 0
        assert reply.json()["metadata"]["principal"]["token_id"] == token.json()["id"]
        tls.close()
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/1.0", timeout=10)
        assert secret not in daemon.log.read_text()
    finally:
        stop_daemon(daemon)
