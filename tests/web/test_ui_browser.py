"""The web UI in headless Chromium against a real hivectld on the simulated FreeBSD host (tests/web/conftest.py).

What a user does with the page, checked on the host and through the CLI: the list shows the guests; a
start from the page, or a stop from the CLI, changes the row's state through the event stream (the page
is never reloaded and does not poll); the stream, cut, reconnects with ``since`` and misses nothing; a
failed start shows the CLI's one-line error; create from a template (after a dry-run preview) makes a guest
``hivectl list`` shows; a snapshot taken from the page is in ``hivectl info``'s snapshots and one deleted
from it is gone; a viewer's page has no button that changes anything, and the POST it could forge is
refused with 403 and audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.daemon.test_endpoints import normal
from tests.web.conftest import Browser, BrowserError, WebDaemon

ZFS_STORE = "zds"  # a ZFS datastore on the simulated host: snapshots need one


def run(web: WebDaemon, *args: str) -> str:
    done = web.hivectl(*args)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def state_cell(name: str) -> str:
    return f"document.querySelector('tr[data-guest={json.dumps(name)}] td.state')"


def wait_state(browser: Browser, name: str, prefix: str, timeout: float = 60) -> None:
    browser.wait_for(f"({state_cell(name)} || {{}}).textContent?.startsWith({json.dumps(prefix)})", timeout=timeout)


def messages(browser: Browser) -> list[str]:
    return list(browser.eval("[...document.querySelectorAll('#messages li')].map(li => li.textContent)"))


def page_report(browser: Browser, web: WebDaemon, guest: str | None = None) -> str:
    """What the page and the daemon showed, for a failure message: the message lines, the stream's state,
    the guest's row (state cell, each button and whether it is disabled) and the daemon's operations."""
    shown = browser.eval(f"""(() => {{
        const row = document.querySelector('tr[data-guest=' + {json.dumps(json.dumps(guest or ""))} + ']');
        return {{messages: [...document.querySelectorAll('#messages li')].map(li => li.textContent),
                 live: document.getElementById('live').dataset.state,
                 row: row && {{state: row.querySelector('td.state').textContent,
                               buttons: [...row.querySelectorAll('button')].map(b =>
                                   `${{b.textContent}}${{b.disabled ? ' (disabled)' : ''}}`)}},
                 opMessages: [...window.hivectlUi.opMessages.entries()].map(([id, m]) => `${{id}} ${{m.label}}`)}};
    }})()""")
    with web.client() as client:
        answer = client.get("/1.0/operations")
    operations = [f"{o['description']} {o['status']} {o['err']!r} {o['id']}"
                  for o in answer.json().get("metadata") or []] if answer.status_code == 200 else answer.text
    return f"page: {json.dumps(shown, ensure_ascii=False)}\ndaemon's operations: {operations}"


def wait_message(browser: Browser, text: str, timeout: float = 90, web: WebDaemon | None = None,
                 guest: str | None = None) -> str:
    """The first finished message line starting with ``text``; on a timeout the error says what the page
    and (given ``web``) the daemon showed."""
    try:
        return str(browser.wait_for(
            f"[...document.querySelectorAll('#messages li')].map(li => li.textContent)"
            f".find(t => t.startsWith({json.dumps(text)}) && !t.endsWith('…') && !/: (running|pending)/i.test(t))",
            timeout=timeout))
    except BrowserError as error:
        if web is None:
            raise
        raise BrowserError(f"{error}\n{page_report(browser, web, guest)}") from None


def open_ui(browser: Browser, web: WebDaemon, token: str) -> None:
    browser.login(web, token, page="/ui/")
    browser.open(web.url("/ui/"))
    browser.wait_for("document.getElementById('live').dataset.state === 'live'", timeout=60)
    browser.eval("window.hivectlTestMark = 'same page'")  # gone if the page were ever reloaded


@pytest.fixture(scope="module")
def ui(sim_web: WebDaemon) -> Iterator[WebDaemon]:
    assert sim_web.simhost.run(["zfs", "create", "zroot/guests"]).returncode == 0
    run(sim_web, "datastore", "add", ZFS_STORE, "zfs:zroot/guests")
    run(sim_web, "create", "-s", "1M", "alpha")
    run(sim_web, "create", "-d", ZFS_STORE, "-s", "1M", "zeta")
    run(sim_web, "create", "-s", "1M", "-c", "8", "toobig")  # the simulated host allows 4 vCPUs per guest
    yield sim_web


def test_live_state_actions_and_errors(ui: WebDaemon, browser: Browser) -> None:
    open_ui(browser, ui, ui.token)
    rows = browser.wait_for("document.querySelectorAll('#guests tbody tr').length === 3 && "
                            "[...document.querySelectorAll('#guests tbody tr')].map(tr => tr.dataset.guest)")
    assert rows == ["alpha", "toobig", "zeta"]  # hivectl list's order
    assert browser.eval(f"{state_cell('alpha')}.textContent") == "Stopped"
    # Started from the page: the button runs the background operation to its end, the row follows.
    browser.eval("document.querySelector('button[data-op=start][data-guest=alpha]').click()")
    assert wait_message(browser, "start alpha", web=ui, guest="alpha") == "start alpha: done"
    wait_state(browser, "alpha", "Running")
    assert "Running" in run(ui, "list").split("alpha", 1)[1].split("\n", 1)[0]
    # The CLI's start of toobig fails (its line is what the page must show below). It is run before the
    # stop of alpha, whose events re-read the list: a failed start writes no event, and a re-read that
    # fell while its run.lock existed (listed as Running) would leave toobig's Start button disabled.
    cli = ui.hivectl("start", "toobig")
    assert cli.returncode != 0
    line = cli.stderr.strip().splitlines()[-1].removeprefix("hivectl: ")
    # Stopped by someone else (the CLI) while the page's stream is down: when it comes back it asks with
    # since and gets what it missed. The page has then seen every event of the log since it loaded, each
    # once and in order, and the row shows the stop.
    browser.eval("window.hivectlUi.stream.pause()")
    browser.wait_for("document.getElementById('live').dataset.state === 'reconnecting'")
    run(ui, "stop", "alpha")
    browser.eval("window.hivectlUi.stream.resume()")
    wait_state(browser, "alpha", "Stopped")
    first = int(browser.eval("window.hivectlUi.firstSeq"))
    logged = [int(json.loads(line)["seq"]) for line in run(ui, "events", "--json", "--since", str(first)).splitlines()]
    assert logged and logged == list(range(first + 1, logged[-1] + 1))
    browser.wait_for(f"window.hivectlUi.stream.seq >= {logged[-1]}", timeout=30)
    seen = browser.eval("window.hivectlUi.seqs")
    assert seen[:len(logged)] == logged, (seen, logged)
    # A start that fails shows the line the CLI prints after 'hivectl: ', word for word; and keeps it when
    # the operation's progress events arrive after the wait's answer (a loaded machine's stream lags the
    # wait: CI saw the failure line overwritten by a late "running" event). The stream is paused while the
    # operation runs, so that every one of its events arrives late.
    start_toobig = "document.querySelector('button[data-op=start][data-guest=toobig]')"
    try:
        browser.wait_for(f"{state_cell('toobig')}.textContent === 'Stopped' && !{start_toobig}.disabled")
    except BrowserError as error:
        raise BrowserError(f"{error}\n{page_report(browser, ui, 'toobig')}") from None
    browser.eval("window.hivectlUi.stream.pause()")
    browser.wait_for("document.getElementById('live').dataset.state === 'reconnecting'")
    before = len(messages(browser))
    browser.eval(f"{start_toobig}.click()")
    assert wait_message(browser, "start toobig", web=ui, guest="toobig") == f"start toobig failed: {line}"
    browser.eval("window.hivectlUi.stream.resume()")
    events = [json.loads(e) for e in run(ui, "events", "--json", "--since", str(first)).splitlines()]
    progress = [e for e in events if e["type"] == "operation" and e["target"] == "/guests/toobig"
                and e["details"]["operation"] == "start"]
    assert [e["details"]["status"] for e in progress][-2:] == ["Running", "Failure"], progress
    browser.wait_for(f"window.hivectlUi.stream.seq >= {events[-1]['seq']}", timeout=30)
    assert progress[-2]["seq"] in browser.eval("window.hivectlUi.seqs")  # the late "running" reached the page
    shown = messages(browser)
    assert len(shown) == before + 1 and shown[0] == f"start toobig failed: {line}", (
        f"{shown}\n{page_report(browser, ui, 'toobig')}")
    assert browser.eval("window.hivectlTestMark") == "same page"
    assert not [m for m in browser.console if m.startswith("exception")], browser.console


def test_create_from_a_template_after_a_preview(ui: WebDaemon, browser: Browser) -> None:
    open_ui(browser, ui, ui.token)
    browser.wait_for("!!document.querySelector('#create-template option[value=default]')")
    browser.eval("""(() => {
        const form = document.getElementById('create-form');
        form.name.value = 'fromui'; form.size.value = '2M'; form.template.value = 'default';
        document.getElementById('create-preview').click();
    })()""")
    plan = str(browser.wait_for("!document.getElementById('create-plan').hidden && "
                                "document.getElementById('create-plan').textContent"))
    dry = ui.hivectl("create", "--dry-run", "-s", "2M", "fromui")
    assert dry.returncode == 0, dry.stderr
    # The preview is the plan `hivectl create --dry-run` prints (one argv per line), random names aside.
    cli = [" ".join(json.loads(line)) for line in dry.stdout.splitlines()]
    assert normal(plan.splitlines()) == normal(cli) and cli, (plan, cli)
    assert "fromui" not in run(ui, "list")  # a preview changes nothing
    browser.eval("document.querySelector('#create-form button[type=submit]').click()")
    assert wait_message(browser, "create fromui") == "create fromui: done"
    rows = {row["name"]: row for row in json.loads(run(ui, "list", "--json"))}
    assert "fromui" in rows
    browser.wait_for("!!document.querySelector('tr[data-guest=fromui]')")


def test_snapshots_taken_and_deleted_from_the_page(ui: WebDaemon, browser: Browser) -> None:
    def snapshots() -> list[str]:
        return [s["name"] for s in json.loads(run(ui, "info", "--json", "zeta"))["snapshots"]]

    open_ui(browser, ui, ui.token)
    browser.wait_for("!!document.querySelector('button[data-view=snapshots][data-guest=zeta]')")
    browser.eval("document.querySelector('button[data-view=snapshots][data-guest=zeta]').click()")
    browser.wait_for("document.getElementById('snapshots').open && "
                     "document.getElementById('snapshot-note').textContent === 'zeta has no snapshots.'")
    browser.eval("document.getElementById('snapshot-name').value = 'fromui';"
                 "document.querySelector('#snapshot-form button[type=submit]').click()")
    browser.wait_for("!!document.querySelector('#snapshot-table tr[data-snapshot=fromui]')", timeout=60)
    assert snapshots() == ["fromui"]
    # Deleting asks first; cancelled, nothing happens.
    browser.eval("document.querySelector('button[data-op=destroy][data-snapshot=fromui]').click()")
    browser.wait_for("document.getElementById('confirm').open")
    assert "zeta@fromui" in browser.eval("document.getElementById('confirm-text').textContent")
    browser.eval("document.querySelector('#confirm button[value=cancel]').click()")
    time.sleep(1)
    assert snapshots() == ["fromui"]
    browser.eval("document.querySelector('button[data-op=destroy][data-snapshot=fromui]').click()")
    browser.wait_for("document.getElementById('confirm').open")
    browser.eval("document.getElementById('confirm-ok').click()")
    assert wait_message(browser, "destroy zeta@fromui") == "destroy zeta@fromui: done"
    assert snapshots() == []


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(ui: WebDaemon, browser: Browser) -> None:
    viewer = ui.make_token(role="viewer")
    run(ui, "snapshot", "zeta@kept")
    visible_ops = "[...document.querySelectorAll('[data-op]')].filter(e => e.checkVisibility()).map(e => e.dataset.op)"
    open_ui(browser, ui, viewer)
    browser.wait_for("document.querySelectorAll('#guests tbody tr').length >= 3")
    assert browser.eval(visible_ops) == []
    assert browser.eval("document.getElementById('create-section').hidden") is True
    # The only buttons of the list open the snapshot panel, which lists and offers nothing to change.
    views = browser.eval("[...document.querySelectorAll('#guests button')].map(b => b.dataset.view)")
    assert set(views) == {"snapshots"}
    browser.eval("document.querySelector('button[data-view=snapshots][data-guest=zeta]').click()")
    browser.wait_for("!!document.querySelector('#snapshot-table tr[data-snapshot=kept]')")
    assert browser.eval(visible_ops) == []
    # The same page as an admin shows them (so the check above can fail).
    open_ui(browser, ui, ui.token)
    browser.wait_for("document.querySelectorAll('#guests tbody tr').length >= 3")
    assert {"start", "create", "console"} <= set(browser.eval(visible_ops))
    open_ui(browser, ui, viewer)
    browser.wait_for("document.querySelectorAll('#guests tbody tr').length >= 3")
    forged: Any = browser.eval("""fetch('/1.0/guests/alpha/start', {method: 'POST',
        headers: {'Authorization': 'Bearer ' + sessionStorage.getItem('hivectl.token'),
                  'Content-Type': 'application/json'}, body: '{}'})
        .then(async r => [r.status, (await r.json()).code])""")
    assert forged == [403, "forbidden"]
    audit = [json.loads(line) for line in run(ui, "audit", "--json").splitlines()]
    assert any(a["operation"] == "start" and a["result"] == "refused" and a["target"] == ["/guests/alpha"]
               for a in audit), audit[-5:]
    assert "Stopped" in run(ui, "list").split("alpha", 1)[1].split("\n", 1)[0]
