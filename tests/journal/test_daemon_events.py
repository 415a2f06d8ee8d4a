"""The event stream and the audit log through a real hivectld (tests/daemon/conftest.py starts it on a unix
socket over the simulated FreeBSD host): connections killed mid-stream lose nothing, the daemon's changes
are audited under the caller's principal, and a secret sent to the daemon reaches neither log."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import Daemon, shared  # noqa: F401  (shared: fixture)

websockets_client = pytest.importorskip("websockets.sync.client", reason="the daemon extra is not installed")

CHANGES = 1_000
PASSWORD = "Daemon-sw0rdfish-never-logged"


def lines(vm_dir: Path, name: str) -> list[dict[str, Any]]:
    path = vm_dir / ".config" / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def make_guest(daemon: Daemon, name: str) -> None:
    reply = daemon.post("/1.0/guests", json={"name": name, "size": "1G"})
    assert reply.status_code in (200, 202), reply.text
    if reply.status_code == 202:
        assert daemon.wait_op(reply.headers["Location"])["status"] == "Success"


def drive_changes(daemon: Daemon, name: str, count: int, errors: list[str]) -> None:
    """``count`` configuration changes of guest ``name`` through the daemon, one event each."""
    for i in range(count):
        action = "add" if i % 2 == 0 else "remove"
        reply = daemon.post(f"/1.0/guests/{name}/tags/{action}", json={"tags": ["flip"]})
        if reply.status_code != 200:
            errors.append(reply.text)
            return


def kill(connection: Any) -> None:
    """Cut the client's connection the hard way: no close handshake, the socket just goes."""
    sock = connection.socket
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_killed_connections_reconnect_with_since_and_lose_nothing(shared: Daemon) -> None:  # noqa: F811
    daemon = shared
    make_guest(daemon, "evstream")
    start = lines(daemon.vm_dir, "events.jsonl")[-1]["seq"]
    errors: list[str] = []
    writer = threading.Thread(target=drive_changes, args=(daemon, "evstream", CHANGES, errors))
    writer.start()
    received: list[dict[str, Any]] = []
    since, cuts = start, 0

    def changes_seen() -> int:
        return sum(1 for e in received if e["target"] == "/guests/evstream" and e["type"] == "config-changed")

    deadline = time.monotonic() + 300
    try:
        while changes_seen() < CHANGES and time.monotonic() < deadline:
            if cuts % 2 == 0:  # alternately a websocket and an SSE stream, each cut after 150 events
                with websockets_client.unix_connect(str(daemon.socket),
                                                    f"ws://hivectld/1.0/events?since={since}") as ws:
                    for _ in range(150):
                        received.append(json.loads(ws.recv(timeout=60)))
                        if changes_seen() == CHANGES:
                            break
                    kill(ws)
            else:
                with daemon.client.stream("GET", "/1.0/events", params={"since": since},
                                          headers={"Accept": "text/event-stream"}, timeout=60) as reply:
                    assert reply.status_code == 200
                    taken = 0
                    for line in reply.iter_lines():
                        if line.startswith("data: "):
                            received.append(json.loads(line[6:]))
                            taken += 1
                            if taken == 150 or changes_seen() == CHANGES:
                                break
            cuts += 1
            since = received[-1]["seq"]
    finally:
        writer.join(300)
    assert errors == []
    assert cuts >= 6, "the stream was cut several times"
    assert [e["type"] for e in received if e["type"] == "gap"] == []
    seqs = [e["seq"] for e in received]
    assert seqs == list(range(start + 1, start + 1 + len(seqs))), "every number once, in order, across the cuts"
    mine = [e for e in received if e["target"] == "/guests/evstream" and e["type"] == "config-changed"]
    assert len(mine) == CHANGES
    assert [e["details"]["operation"] for e in mine[:4]] == ["tags_add", "tags_remove", "tags_add", "tags_remove"]


def test_daemon_changes_are_audited_under_the_principal_and_secrets_stay_out(shared: Daemon) -> None:  # noqa: F811
    daemon = shared
    make_guest(daemon, "evaudit")
    reply = daemon.client.patch("/1.0/guests/evaudit", json={"keys": {"graphics": "yes", "vnc_password": PASSWORD}})
    assert reply.status_code == 200, reply.text
    assert PASSWORD in (daemon.vm_dir / "evaudit" / "evaudit.conf").read_text()
    line = [a for a in lines(daemon.vm_dir, "audit.jsonl") if a["target"] == ["/guests/evaudit"]][-1]
    assert (line["operation"], line["result"]) == ("set", "ok")
    assert line["who"].get("user") == "root" and line["who"]["uid"] == 0
    assert line["arguments"]["vnc_password"] == "(hidden)" and line["arguments"]["graphics"] == "yes"
    served = daemon.get("/1.0/audit", params={"guest": "evaudit"})
    assert served.status_code == 200, served.text
    assert [a["operation"] for a in served.json()["metadata"]] == ["create", "set"]
    text = "".join(p.read_text() for p in (daemon.vm_dir / ".config").glob("*.jsonl*"))
    assert PASSWORD not in text
    assert PASSWORD not in served.text and PASSWORD not in daemon.get("/1.0/events").text


def test_background_operations_are_events(shared: Daemon) -> None:  # noqa: F811
    daemon = shared
    make_guest(daemon, "evop")
    ops = [e for e in lines(daemon.vm_dir, "events.jsonl")
           if e["type"] == "operation" and e["target"] == "/guests/evop"]
    statuses = [e["details"]["status"] for e in ops]
    assert statuses[0] in ("Pending", "Running") and statuses[-1] == "Success"
    assert {e["details"]["operation"] for e in ops} == {"create"}


def test_a_refusal_is_audited_and_a_viewer_still_streams(shared: Daemon) -> None:  # noqa: F811
    from hivectl.api import Hivectl

    daemon = shared
    make_guest(daemon, "evrefuse")
    made = Hivectl(daemon.vm_dir).token_create(role="viewer", path="/", expires="1h")
    bearer = {"Authorization": f"Bearer {made['token']}"}
    reply = daemon.post("/1.0/guests/evrefuse/tags/add", json={"tags": ["nope"]}, headers=bearer)
    assert reply.status_code == 403, reply.text
    line = lines(daemon.vm_dir, "audit.jsonl")[-1]
    assert (line["operation"], line["target"], line["result"]) == ("tags_add", ["/guests/evrefuse"], "refused")
    assert line["who"]["token"] == made["id"] and line["message"] == reply.json()["error"]
    assert daemon.get("/1.0/audit", headers=bearer).status_code == 403, "the audit log is for admins"
    with websockets_client.unix_connect(str(daemon.socket), "ws://hivectld/1.0/events?since=0",
                                        additional_headers=bearer) as ws:
        assert json.loads(ws.recv(timeout=30))["seq"] >= 1
    text = "".join(p.read_text() for p in (daemon.vm_dir / ".config").glob("*.jsonl*"))
    assert made["token"] not in text, "a bearer secret in a log"
