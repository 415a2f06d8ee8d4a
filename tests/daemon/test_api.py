"""hivectld over its unix socket on the simulated FreeBSD host: envelopes, guests' lifecycle, errors.

Every test talks to a real ``bin/hivectld`` process (tests/daemon/conftest.py) and checks what it did with
the command line or the host's own state, never with the daemon's word alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from hivectl.rcfile import RcFile
from tests.cli_helpers import hivectl
from tests.daemon.conftest import Daemon
from tests.lifecycle_helpers import bhyve_pid, state_of


@pytest.fixture
def daemon(shared: Daemon) -> Iterator[Daemon]:
    """The module's daemon; every test uses guest names of its own."""
    yield shared


def sync_metadata(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["type"], body["status"], body["status_code"]) == ("sync", "Success", 200), body
    return body["metadata"]


def started(reply: Any) -> str:
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert (body["type"], body["status_code"]) == ("async", 100), body
    assert reply.headers["location"] == body["operation"] == body["metadata"]["location"]
    assert body["operation"].startswith("/1.0/operations/")
    return str(body["operation"])


def create(daemon: Daemon, name: str = "g1", **args: Any) -> dict[str, Any]:
    op = daemon.wait_op(started(daemon.post("/1.0/guests", json={"name": name, "size": "1G", **args})))
    assert op["status"] == "Success", op
    return op


def test_server_and_versions(daemon: Daemon) -> None:
    assert sync_metadata(daemon.get("/")) == ["/1.0"]
    server = sync_metadata(daemon.get("/1.0"))
    assert server["api_version"] == "1.0"
    assert server["principal"]["uid"] == 0 and server["vm_dir"] == str(daemon.vm_dir)


def test_errors_carry_the_cli_message(daemon: Daemon) -> None:
    reply = daemon.get("/1.0/guests/nosuch")
    assert reply.status_code == 404
    cli = hivectl("info", "nosuch")
    assert cli.status == 1
    assert reply.json() == {"type": "error", "error_code": 404, "code": "not_found",
                            "error": cli.err.strip().removeprefix("hivectl: ")}
    reply = daemon.post("/1.0/guests", json={"name": "badmem", "size": "1G", "memory": "lots"}, params={"dry_run": 1})
    cli = hivectl("create", "-s", "1G", "-m", "lots", "--dry-run", "badmem")
    assert reply.status_code == 400 and reply.json()["code"] == "invalid", reply.text
    assert reply.json()["error"] == cli.err.strip().removeprefix("hivectl: ")
    # A name that is not a name is refused before anything runs, naming the value.
    reply = daemon.post("/1.0/guests", json={"name": "bad name!", "size": "1G"}, params={"dry_run": 1})
    assert reply.status_code == 400 and reply.json()["code"] == "invalid", reply.text
    assert "'bad name!'" in reply.json()["error"]


def test_api_errors_use_the_error_envelope(daemon: Daemon) -> None:
    for reply, status, code in [
        (daemon.get("/1.0/nowhere"), 404, "not_found"),
        (daemon.client.delete("/1.0/guests"), 405, "method_not_allowed"),
        (daemon.post("/1.0/guests", json={"name": "x", "bogus": 1}), 400, "invalid"),
        (daemon.post("/1.0/guests", content=b"{not json", headers={"content-type": "application/json"}), 400,
         "invalid"),
        (daemon.get("/1.0/operations/nope"), 404, "not_found"),
    ]:
        assert reply.status_code == status, reply.text
        body = reply.json()
        assert body["type"] == "error" and body["error_code"] == status and body["code"] == code, body


def test_create_is_an_operation_the_cli_sees(daemon: Daemon) -> None:
    op = create(daemon, "web1", cpu="2")
    assert op["resources"] == {"guests": ["/1.0/guests/web1"]}
    assert op["metadata"]["result"] == []
    rows = hivectl("list", "--json").json()
    assert [r["cpu"] for r in rows if r["name"] == "web1"] == ["2"]
    listed = sync_metadata(daemon.get("/1.0/guests"))
    assert listed == rows
    info = sync_metadata(daemon.get("/1.0/guests/web1"))
    cli = hivectl("info", "--json", "web1").json()
    assert info.items() <= cli.items()  # the CLI adds the driver's view (driver, accelerator, snapshots)


def test_dry_run_returns_the_plan_and_changes_nothing(daemon: Daemon) -> None:
    plan = sync_metadata(daemon.post("/1.0/guests", json={"name": "dry", "size": "1G"}, params={"dry_run": 1}))
    cli = hivectl("create", "-s", "1G", "--dry-run", "dry")
    assert cli.status == 0, cli.err
    staging = re.compile(r"hivectl-staging-dry-[0-9a-f]+")  # each plan stages under a fresh name
    assert [[staging.sub("S", word) for word in argv] for argv in plan] == \
        [[staging.sub("S", word) for word in json.loads(line)] for line in cli.out.splitlines()]
    assert not (daemon.vm_dir / "dry").exists()
    assert "dry" not in [r["name"] for r in sync_metadata(daemon.get("/1.0/guests"))]


def test_start_and_stop_through_operations(daemon: Daemon) -> None:
    host = daemon.simhost
    create(daemon)
    location = started(daemon.post("/1.0/guests/g1/start"))
    op = daemon.wait_op(location, timeout=60)
    assert op["status"] == "Success", op
    pid = bhyve_pid(host, "g1")
    assert pid is not None and op["metadata"]["result"] == pid
    assert state_of("g1")["state"] == f"Running ({pid})"
    listed = sync_metadata(daemon.get("/1.0/operations"))
    assert [o["id"] for o in listed if o["description"] == "start"] == [location.rsplit("/", 1)[1]]
    # The CLI refuses to start it again: the daemon's start took the same run lock.
    again = hivectl("start", "g1")
    assert again.status == 1 and f"g1 is already Running ({pid})" in again.err
    plan = sync_metadata(daemon.post("/1.0/guests/g1/stop", params={"dry_run": "true"}))
    assert ["bhyvectl", "--vm=g1", "--force-poweroff"] in plan
    op = daemon.wait_op(started(daemon.post("/1.0/guests/g1/stop")), timeout=60)
    assert op["status"] == "Success", op
    assert bhyve_pid(host, "g1") is None and state_of("g1")["state"] == "Stopped"
    # Stopping a stopped guest is the CLI's Conflict, as the operation's error.
    op = daemon.wait_op(started(daemon.post("/1.0/guests/g1/stop")))
    cli = hivectl("stop", "g1")
    assert (op["status"], op["code"], op["status_code"]) == ("Failure", "conflict", 400)
    assert op["err"] == cli.err.strip().removeprefix("hivectl: ")


def test_secrets_never_come_back(daemon: Daemon) -> None:
    create(daemon, "sec")
    reply = daemon.client.patch("/1.0/guests/sec", json={"keys": {"vnc_password": "hunter2", "cpu": "3"}})
    assert sync_metadata(reply) == []
    conf = (daemon.vm_dir / "sec" / "sec.conf").read_text()
    assert 'vnc_password="hunter2"' in conf and 'cpu="3"' in conf  # written, and only in the 0600 file
    for path in ("/1.0/guests/sec/config", "/1.0/guests/sec", "/1.0/guests"):
        reply = daemon.get(path)
        assert reply.status_code == 200 and "hunter2" not in reply.text, (path, reply.text)
    assert 'vnc_password="(hidden)"' in sync_metadata(daemon.get("/1.0/guests/sec/config"))
    assert "hunter2" not in daemon.log.read_text()


def test_the_list_follows_every_change_made_outside_the_daemon(daemon: Daemon) -> None:
    """The daemon caches the guest list (hivectl/daemon/listcache.py); what the CLI changes shows at once."""
    create(daemon, "lc")

    def row() -> dict[str, Any]:
        rows = {r["name"]: r for r in sync_metadata(daemon.get("/1.0/guests"))}
        return rows.get("lc", {})

    assert row()["cpu"] == "1"
    assert row()["cpu"] == "1"  # answered from the cache
    conf = RcFile.load(daemon.vm_dir / "lc" / "lc.conf")  # as hivectl edits it: written aside, renamed
    conf.set("cpu", "3")
    conf.save()
    assert row()["cpu"] == "3"
    assert hivectl("rename", "lc", "lc2").status == 0
    assert row() == {} and "lc2" in [r["name"] for r in sync_metadata(daemon.get("/1.0/guests"))]
    assert sync_metadata(daemon.get("/1.0/guests")) == hivectl("list", "--json").json()


def test_a_viewer_token_is_refused_every_change_and_the_refusal_is_audited(daemon: Daemon) -> None:
    made = hivectl("token", "create", "--role", "viewer", "--json")
    assert made.status == 0, made.err
    bearer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert sync_metadata(daemon.get("/1.0/guests", headers=bearer)) is not None  # a viewer reads
    from hivectl import catalog
    from hivectl.daemon.routes import route_of

    refused = 0
    for op in catalog.operations():
        if not op.mutating or op.role == "viewer":
            continue
        route = route_of(op)
        path = route.path.replace("{" + str(route.placeholder) + "}", "tok") if route.placeholder else route.path
        reply = daemon.client.request(route.verb, f"/1.0{path}", headers=bearer, params={"dry_run": 1},
                                      json={} if not route.in_query else None)
        if reply.status_code == 400:  # the body lacks a required field: refused before authorization
            continue
        assert reply.status_code == 403 and reply.json()["code"] == "forbidden", (op.name, reply.text)
        refused += 1
    assert refused >= 20
    audit = hivectl("audit", "--json")
    assert audit.status == 0, audit.err
    lines = [json.loads(line) for line in audit.out.splitlines()] if audit.out.lstrip().startswith("{") \
        else json.loads(audit.out)
    assert any(line["result"] == "refused" and line["operation"] == "start" for line in lines), lines[-5:]
    assert made.json()["token"] not in audit.out and made.json()["token"] not in daemon.log.read_text()
