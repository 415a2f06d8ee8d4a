"""The web UI's side of a real hivectld, without a browser: its pages, ``/1.0/whoami``, the snapshot list.

A real daemon on the simulated FreeBSD host, over its unix socket, on a ZFS vm_dir (snapshots need one):
the pages are served under ``/ui/`` with a Content-Security-Policy that allows only the daemon's own
scripts, and carry no inline script or handler such a policy would block; ``whoami`` gives each principal
the role ``authorize`` would decide, so that a button the page shows is one the daemon accepts and a
button it hides is one the daemon refuses (checked against real requests); the snapshot list the page
shows is what ``hivectl info`` lists; the pages' scripts never parse text as HTML.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.cli_helpers import hivectl
from tests.daemon.conftest import Daemon, start_daemon, stop_daemon

STATIC = Path(__file__).resolve().parents[2] / "hivectl" / "daemon" / "static"
PAGES = ["index.html", "app.js", "app-api.js", "app-events.js", "app.css"]


@pytest.fixture(scope="module")
def ui_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon on one simulated host with a ZFS vm_dir (``zfs:zroot/vm``, as tests/storage/zfsfixture.py
    makes it) for the whole module: its start costs seconds on a busy machine. Tests use their own guests."""
    from tests.simhost.fixture import SimHost, enter_simulated_host

    base = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as mp:
        root = enter_simulated_host(base, mp)
        (base / "rc.conf").write_text("")
        mp.setenv("HIVECTL_VM_DIR", "zfs:zroot/vm")
        mp.setenv("HIVECTL_RC_CONF", str(base / "rc.conf"))
        simulated = SimHost(root)
        assert simulated.run(["zfs", "create", "zroot/vm"]).returncode == 0
        assert hivectl("init").status == 0
        assert hivectl("switch", "create", "public").status == 0
        sockets = Path(tempfile.mkdtemp(prefix="hu", dir="/tmp"))
        started = start_daemon(Path("zfs:zroot/vm"), sockets / "d.sock")
        started.simhost = simulated
        started.vm_dir = Path(simulated.run(["zfs", "list", "-H", "-o", "mountpoint", "zroot/vm"]).stdout.strip())
        try:
            yield started
        finally:
            stop_daemon(started)
            simulated.close()
            shutil.rmtree(sockets, ignore_errors=True)


def token(*args: str) -> dict[str, str]:
    made = hivectl("token", "create", *args, "--json")
    assert made.status == 0, made.err
    return {"Authorization": f"Bearer {made.json()['token']}"}


class Markup(HTMLParser):
    """The scripts and event-handler attributes of a page (what a CSP without 'unsafe-inline' blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip())


def test_pages_are_served_with_a_policy_that_allows_only_their_own_scripts(ui_daemon: Daemon) -> None:
    page = ui_daemon.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    csp = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'none'"] and csp["script-src"] == ["'self'"], csp
    assert csp["frame-ancestors"] == ["'none'"] and csp["connect-src"] == ["'self'"], csp
    for name, value in (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"),
                        ("referrer-policy", "no-referrer")):
        assert page.headers[name] == value
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]
    markup = Markup()
    markup.feed(page.text)
    assert markup.inline == [] and markup.handlers == [], (markup.inline, markup.handlers)
    assert [s.get("src") for s in markup.scripts] == ["app.js"] and markup.scripts[0].get("type") == "module"
    for name in PAGES:
        reply = ui_daemon.get(f"/ui/{name}")
        assert reply.status_code == 200, name
        assert reply.content == (STATIC / name).read_bytes()
        assert reply.headers["content-security-policy"] == page.headers["content-security-policy"]
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert ui_daemon.get("/ui/app.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    # Every module the pages import is served (a renamed module would leave a blank page).
    for name in PAGES:
        if name.endswith(".js"):
            for imported in re.findall(r'from "\./([\w.-]+)"', (STATIC / name).read_text()):
                assert ui_daemon.get(f"/ui/{imported}").status_code == 200, (name, imported)
    # Nothing outside static/ is reachable, whatever the path says.
    for escape in ("/ui/../routes_ui.py", "/ui/%2e%2e/routes_ui.py", "/ui/..%2froutes_ui.py", "/ui/nosuch.js"):
        assert ui_daemon.get(escape).status_code == 404, escape
    # The API keeps its own answers: JSON envelopes, no page policy needed there.
    assert ui_daemon.get("/1.0").json()["type"] == "sync"


def test_the_scripts_build_no_markup_from_text() -> None:
    """Every element is built with textContent: no innerHTML/outerHTML/insertAdjacentHTML/document.write,
    so no guest name, snapshot name or error message can become markup; and no eval-like call."""
    for name in PAGES:
        if name.endswith(".js"):
            text = (STATIC / name).read_text()
            found = re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function", text)
            assert found == [], (name, found)


def test_whoami_gives_the_role_authorize_decides(ui_daemon: Daemon) -> None:
    assert hivectl("create", "-s", "1M", "web").status == 0
    assert hivectl("create", "-s", "1M", "db").status == 0
    root = ui_daemon.get("/1.0/whoami").json()["metadata"]
    assert root["principal"]["uid"] == 0
    assert {p: root["roles"][p] for p in ("/", "/guests", "/guests/web", "/guests/db", "/switches/public",
                                          "/datastores/default")} == dict.fromkeys(
        ("/", "/guests", "/guests/web", "/guests/db", "/switches/public", "/datastores/default"), "admin")
    ops = root["operations"]
    assert ops["start"] == {"role": "operator", "path": "/guests/{name}", "asynchronous": True}
    assert ops["destroy"]["role"] == "admin" and ops["snapshots"]["role"] == "viewer"
    assert isinstance(root["events_seq"], int) and root["events_seq"] > 0  # the creates above are events

    viewer = token("--role", "viewer")
    operator_on_web = token("--role", "operator", "--path", "/guests/web")
    shown = ui_daemon.get("/1.0/whoami", headers=viewer).json()["metadata"]
    assert shown["principal"]["token_id"] is not None
    assert {shown["roles"][p] for p in ("/", "/guests/web", "/guests/db")} == {"viewer"}
    narrowed = ui_daemon.get("/1.0/whoami", headers=operator_on_web).json()["metadata"]["roles"]
    assert narrowed["/guests/web"] == "operator" and narrowed["/guests/db"] is None and narrowed["/"] is None
    asked = ui_daemon.get("/1.0/whoami", params={"path": ["/guests/web", "/guests/new"]}, headers=operator_on_web)
    assert asked.json()["metadata"]["roles"] == {"/guests/web": "operator", "/guests/new": None}, asked.text
    bad = ui_daemon.get("/1.0/whoami", params={"path": "/etc/passwd"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid", bad.text
    assert ui_daemon.get("/1.0/whoami", headers={"Authorization": "Bearer hvt.nosuch.x"}).status_code == 401

    # What whoami allows is what the daemon accepts, and what it withholds the daemon refuses (a forged
    # POST from a page whose button was hidden): every guest action of the page, for both tokens.
    rank = {None: 0, "viewer": 1, "operator": 2, "admin": 3}
    actions = [("start", "POST", "/1.0/guests/{g}/start", {}), ("stop", "POST", "/1.0/guests/{g}/stop", {}),
               ("poweroff", "POST", "/1.0/guests/{g}/poweroff", {}),
               ("snapshot", "POST", "/1.0/guests/{g}@s1/snapshot", {}),
               ("destroy", "DELETE", "/1.0/guests/{g}", None), ("create", "POST", "/1.0/guests", {"name": "x{g}"})]
    for bearer in (viewer, operator_on_web):
        roles = ui_daemon.get("/1.0/whoami", headers=bearer).json()["metadata"]["roles"]
        for guest in ("web", "db"):
            for op, verb, path, body in actions:
                where = "/guests" if op == "create" else f"/guests/{guest}"
                allowed = rank[roles[where]] >= rank[ops[op]["role"]]
                reply = ui_daemon.client.request(verb, path.format(g=guest), params={"dry_run": 1}, headers=bearer,
                                                 **({} if body is None else {"json": {k: v.format(g=guest)
                                                                                     for k, v in body.items()}}))
                assert (reply.status_code != 403) == allowed, (op, guest, roles[where], reply.text)
    audit = [json.loads(line) for line in (ui_daemon.vm_dir / ".config" / "audit.jsonl").read_text().splitlines()]
    refused = {(line["operation"], tuple(line["target"])) for line in audit if line["result"] == "refused"}
    assert {("start", ("/guests/db",)), ("stop", ("/guests/web",)), ("create", ("/guests/xweb",))} <= refused


def test_the_snapshot_list_is_what_info_lists(ui_daemon: Daemon, tmp_path: Path) -> None:
    assert hivectl("create", "-s", "1M", "snapweb").status == 0
    assert ui_daemon.get("/1.0/guests/snapweb/snapshots").json()["metadata"] == []
    taken = ui_daemon.post("/1.0/guests/snapweb@before/snapshot", json={})
    assert taken.status_code == 200, taken.text
    assert hivectl("snapshot", "snapweb@after").status == 0
    listed = ui_daemon.get("/1.0/guests/snapweb/snapshots").json()["metadata"]
    info = hivectl("info", "--json", "snapweb").json()
    assert [s["name"] for s in listed] == ["before", "after"] == [s["name"] for s in info["snapshots"]]
    assert listed == info["snapshots"]
    gone = ui_daemon.get("/1.0/guests/nosuch/snapshots")
    assert gone.status_code == 404 and gone.json()["error"] == "guest nosuch does not exist", gone.text
    # A guest on a directory datastore has no snapshots to offer: one line says so.
    (tmp_path / "plain").mkdir()
    assert hivectl("datastore", "add", "plain", str(tmp_path / "plain")).status == 0
    assert hivectl("create", "-d", "plain", "-s", "1M", "flat").status == 0
    reply = ui_daemon.get("/1.0/guests/flat/snapshots")
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith("listing snapshots needs a ZFS datastore; flat is in plain"), reply.text
