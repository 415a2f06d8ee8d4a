"""Remotes over ssh on the two-host bed (docs/remotes.md): the test's own hivectl (in the test's namespace,
with a vm_dir of its own) reaches the namespace hosts ``a`` and ``b``, both simulated FreeBSD hosts.

Everything is observed on the far side too: the simulated host's running bhyve, the remote's own vm_dir,
audit log and event log, never hivectl's claims alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivectl.remote import (
    RemoteConflict,
    RemoteError,
    RemoteInvalid,
    RemoteNotFound,
    RemoteUnreachable,
    RemoteUsageError,
    connect,
)
from tests.cli_helpers import Outcome, hivectl
from tests.multihost.bed import Bed, local_env


@pytest.fixture(scope="module")
def here(bed: Bed) -> Iterator[dict[str, str]]:
    """The test's own hivectl's environment, with remotes ``a`` and ``b`` recorded."""
    env = local_env(bed.base)
    assert hivectl("init", env=env).status == 0
    for name in ("a", "b"):
        bed.add_remote(None, name, bed[name], env=env)
    for host in bed.hosts.values():
        if "public" not in host.ok("switch", "list").out:
            host.ok("switch", "create", "public")
    yield env


def run(env: dict[str, str], *args: str) -> Outcome:
    return hivectl(*args, env=env, timeout=120)


def ok(env: dict[str, str], *args: str) -> Outcome:
    result = run(env, *args)
    assert result.status == 0, f"hivectl {' '.join(args)}: {result.err}"
    return result


def remote(env: dict[str, str], name: str) -> Any:
    return connect(env["HIVECTL_VM_DIR"], name)


# -- add, list, remove ---------------------------------------------------------------------------------------
def test_add_list_remove(bed: Bed, here: dict[str, str]) -> None:
    ok(here, "remote", "add", "extra", "ssh://admin@example.net:2222", "--command", "/usr/local/bin/hivectl")
    listed = {r["name"]: r for r in json.loads(ok(here, "remote", "list", "--json").out)}
    assert set(listed) == {"a", "b", "extra"}
    assert listed["extra"]["url"] == "ssh://admin@example.net:2222"
    assert listed["extra"]["command"] == "/usr/local/bin/hivectl"
    assert listed["a"]["command"] == str(bed["a"].command)
    stored = Path(here["HIVECTL_VM_DIR"], ".config", "remotes.json")
    assert stored.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(stored.read_text())["remotes"]) == {"a", "b", "extra"}

    taken = run(here, "remote", "add", "extra", "ssh://other.example.net")
    assert taken.status == 1 and "remote 'extra' exists" in taken.err

    ok(here, "remote", "remove", "extra")
    assert "extra" not in ok(here, "remote", "list").out
    gone = run(here, "remote", "remove", "extra")
    assert gone.status == 1 and gone.err == "hivectl: no remote 'extra' (see 'hivectl remote list')\n"
    unknown = run(here, "-H", "extra", "list")
    assert unknown.status == 1 and "no remote 'extra'" in unknown.err


# -- hostile values ------------------------------------------------------------------------------------------
CANARY = "/tmp/hivectl-remote-canary"  # a ProxyCommand or a remote shell word would create it

HOSTILE_URLS = [
    f"ssh://-oProxyCommand=touch {CANARY}",
    f"ssh://-oProxyCommand=touch${{IFS}}{CANARY}",
    f"ssh://root@-oProxyCommand=touch{CANARY}",
    f"-oProxyCommand=touch {CANARY}",
    f"ssh://host;touch {CANARY}",
    f"ssh://host$(touch {CANARY})",
    f"ssh://-l{CANARY}@host",
    "ssh://host:22 -oProxyCommand=x",
    "ssh://host:0", "ssh://host:65536", "ssh://host:022", "ssh://host:ssh",
    "ssh://host/path", "ssh://host?x=1", "ssh://host#frag", "ssh://[::1", "ssh://[nothex::1]",
    "ssh://us er@host", "ssh://user@@host", "ssh://", "ssh://@host", "ssh://%2DoProxyCommand=x",
    "http://host", "host", "ssh://-host", "ssh://host-.example", "ssh://a..b",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_urls_refused(here: dict[str, str], url: str) -> None:
    stored = Path(here["HIVECTL_VM_DIR"], ".config", "remotes.json")
    before = stored.read_bytes()
    refused = run(here, "remote", "add", "evil", url)
    assert refused.status == 1, refused
    assert refused.err.startswith(f"hivectl: command line: url={url!r}: "), refused.err
    assert stored.read_bytes() == before
    assert not os.path.exists(CANARY)


@pytest.mark.parametrize("option, value, key", [
    ("--command", f"hivectl; touch {CANARY}", "command"),
    ("--command", f"$(touch {CANARY})", "command"),
    ("--command", "hivectl _serve", "command"),
    ("--command", "-oProxyCommand=x", "command"),
    ("--identity", "relative/key", "identity"),
    ("--known-hosts", "known_hosts", "known_hosts"),
    ("--identity", "/nonexistent/key", "identity"),
])
def test_hostile_options_refused(here: dict[str, str], option: str, value: str, key: str) -> None:
    refused = run(here, "remote", "add", "evil", "ssh://host.example", f"{option}={value}")
    assert refused.status == 1, refused
    assert f": {key}={value!r}: " in refused.err, refused.err
    assert "evil" not in Path(here["HIVECTL_VM_DIR"], ".config", "remotes.json").read_text()


@pytest.mark.parametrize("name", ["a:b", "-x", "local", "../up", "a b", "", "x" * 64])
def test_hostile_names_refused(here: dict[str, str], name: str) -> None:
    refused = run(here, "remote", "add", "--", name, "ssh://host.example")
    assert refused.status in (1, 2), refused
    assert "NAME=" in refused.err or "usage" in refused.err, refused.err


def test_a_hand_edited_file_is_checked_on_every_read(here: dict[str, str], tmp_path: Path) -> None:
    """A remotes file changed behind hivectl's back is refused, naming file, key and value, before ssh
    runs (the canary a ProxyCommand would create never appears)."""
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    env = {**here, "HIVECTL_VM_DIR": str(vm_dir)}
    ok(env, "init")
    stored = vm_dir / ".config" / "remotes.json"
    url = f"ssh://-oProxyCommand=touch {CANARY}"
    stored.write_text(json.dumps({"version": 1, "remotes": {"evil": {"url": url}}}))
    for args in (("-H", "evil", "list"), ("list", "--all-remotes"), ("remote", "list")):
        refused = run(env, *args)
        assert refused.status == 1, refused
        assert refused.err == f"hivectl: {stored}: remotes.evil.url={url!r}: expected ssh://[user@]host[:port]\n"
    assert not os.path.exists(CANARY)


# -- -H and NAME:guest ---------------------------------------------------------------------------------------
def test_h_list_start_stop_on_the_simulated_remote(bed: Bed, here: dict[str, str]) -> None:
    a, b = bed["a"], bed["b"]
    assert a.sim is not None and b.sim is not None
    ok(here, "-H", "a", "create", "hweb")
    try:
        assert (a.vm_dir / "hweb" / "hweb.conf").is_file()
        assert not (b.vm_dir / "hweb").exists() and not Path(here["HIVECTL_VM_DIR"], "hweb").exists()
        assert ok(here, "-H", "a", "list").out == a.ok("list").out
        ok(here, "-H", "a", "start", "hweb")
        assert "hweb" in a.sim.running() and "hweb" not in b.sim.running()
        rows = {r["name"]: r for r in json.loads(ok(here, "list", "-H", "a", "--json").out)}
        assert rows["hweb"]["state"].startswith("Running")
        ok(here, "stop", "a:hweb")  # NAME:guest instead of -H
        deadline = time.monotonic() + 30
        while "hweb" in a.sim.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "hweb" not in a.sim.running()
        assert json.loads(ok(here, "-H", "a", "list", "--json").out)[0]["state"] == "Stopped"
    finally:
        a.hivectl("poweroff", "hweb")
        a.hivectl("destroy", "-f", "hweb")


def test_remote_errors_keep_their_line_and_exit_status(here: dict[str, str]) -> None:
    missing = run(here, "-H", "a", "info", "nosuch")
    assert missing.status == 1 and missing.err == "hivectl: a: guest nosuch does not exist\n"
    usage = run(here, "-H", "a", "start")  # the command line is read here, before anything is sent
    assert usage.status == 2 and usage.err.startswith("hivectl: hivectl start: ")
    mixed = run(here, "start", "a:one", "b:two")
    assert mixed.status == 2 and "several remotes" in mixed.err
    both = run(here, "-H", "a", "start", "b:two")
    assert both.status == 2 and both.err == "hivectl: -H a and b: name one remote\n"
    console = run(here, "console", "a:web")
    assert console.status == 2 and "ssh -t" in console.err


def test_remote_errors_arrive_typed_through_the_api(bed: Bed, here: dict[str, str]) -> None:
    a = remote(here, "a")
    with pytest.raises(RemoteNotFound) as missing:
        a.call("info", {"name": "nosuch"})
    assert (missing.value.code, str(missing.value)) == ("not_found", "a: guest nosuch does not exist")
    with pytest.raises(RemoteUsageError) as usage:
        a.call("guests", {"bogus": 1})
    assert usage.value.code == "usage" and usage.value.exit_status == 2
    assert str(usage.value) == "a: guests: unknown argument(s): bogus"
    with pytest.raises(RemoteUsageError, match="no operation 'rm_rf'"):
        a.call("rm_rf", {})
    bed["a"].ok("create", "typed")
    try:
        with pytest.raises(RemoteInvalid) as invalid:
            a.call("set", {"name": "typed", "keys": {"cpu": "lots"}})
        assert invalid.value.code == "invalid" and invalid.value.key == "cpu" and invalid.value.value == "lots"
        assert "cpu='lots'" in str(invalid.value)
        bed["a"].ok("start", "typed")
        with pytest.raises(RemoteConflict) as running:
            a.call("destroy", {"name": "typed"})
        assert running.value.code == "conflict" and str(running.value).startswith("a: ")
    finally:
        bed["a"].hivectl("poweroff", "typed")
        bed["a"].hivectl("destroy", "-f", "typed")


def test_dry_run_is_passed_through(bed: Bed, here: dict[str, str]) -> None:
    a = bed["a"]
    assert a.sim is not None
    a.ok("create", "dry")
    try:
        a.sim.clear_commands()
        planned = remote(here, "a").call("start", {"name": "dry"}, dry_run=True)
        assert any(argv and argv[0].endswith("bhyve") for argv in planned), planned
        assert "dry" not in a.sim.running() and not any(c[0] == "bhyve" for c in a.sim.commands())
        shown = ok(here, "-H", "a", "start", "--dry-run", "dry").out
        assert "bhyve" in shown and "dry" not in a.sim.running()
    finally:
        a.hivectl("destroy", "-f", "dry")


def test_audit_and_journal_of_the_remote_name_the_ssh_principal(bed: Bed, here: dict[str, str]) -> None:
    a = bed["a"]
    ok(here, "-H", "a", "create", "audited")
    remote(here, "a").call("tags_add", {"name": "audited", "tags": ["prod"]})
    try:
        audit = [json.loads(line) for line in (a.vm_dir / ".config" / "audit.jsonl").read_text().splitlines()]
        mine = [r for r in audit if r["operation"] in ("create", "tags_add") and "audited" in json.dumps(r)]
        assert [r["operation"] for r in mine] == ["create", "tags_add"]
        for record in mine:
            assert record["who"] == {"uid": 0, "user": "root", "via": "ssh", "from": bed.gateway}, record
            assert record["result"] == "ok"
        events = (a.vm_dir / ".config" / "events.jsonl").read_text()
        assert "audited" in events
        assert not (Path(here["HIVECTL_VM_DIR"], ".config", "audit.jsonl").exists()
                    and "audited" in Path(here["HIVECTL_VM_DIR"], ".config", "audit.jsonl").read_text())
    finally:
        a.hivectl("destroy", "-f", "audited")


def test_secrets_travel_on_stdin_and_are_hidden_in_the_remote_audit(bed: Bed, here: dict[str, str]) -> None:
    a = bed["a"]
    a.ok("create", "secret")
    try:
        remote(here, "a").call("set", {"name": "secret", "keys": {"vnc_password": "hunter2-sekrit"}})
        assert 'vnc_password="hunter2-sekrit"' in (a.vm_dir / "secret" / "secret.conf").read_text()
        for log in ("audit.jsonl", "events.jsonl"):
            assert "hunter2-sekrit" not in (a.vm_dir / ".config" / log).read_text()
    finally:
        a.hivectl("destroy", "-f", "secret")


# -- streams -------------------------------------------------------------------------------------------------
def test_stream_carries_bytes_both_ways(here: dict[str, str]) -> None:
    payload = os.urandom(3 << 20)
    with remote(here, "b").stream(["echo"]) as pipes:
        import threading

        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(pipes.stdout.read()))
        reader.start()
        pipes.stdin.write(payload)
        pipes.stdin.close()
        reader.join(60)
    assert got == [payload]


def test_stream_errors_arrive_typed(here: dict[str, str]) -> None:
    with pytest.raises(RemoteConflict, match=r"^b: echo: failing as asked$"), \
            remote(here, "b").stream(["echo", "fail"]) as pipes:
        pipes.stdin.close()
    with pytest.raises(RemoteUsageError, match="unknown stream 'nosuch'"), \
            remote(here, "b").stream(["nosuch"]) as pipes:
        pipes.stdin.close()


# -- list --all-remotes --------------------------------------------------------------------------------------
def test_all_remotes_lists_every_host_and_survives_one_down(bed: Bed, here: dict[str, str]) -> None:
    a, b = bed["a"], bed["b"]
    a.ok("create", "on-a")
    b.ok("create", "on-b")
    try:
        table = ok(here, "list", "--all-remotes")
        lines = table.out.splitlines()
        assert lines[0].split()[:2] == ["HOST", "NAME"]
        hosts = {line.split()[1]: line.split()[0] for line in lines[1:]}
        assert hosts["on-a"] == "a" and hosts["on-b"] == "b"
        rows = json.loads(ok(here, "list", "--all-remotes", "--json", "-o", "name,state").out)
        assert {(r["host"], r["name"]) for r in rows} >= {("a", "on-a"), ("b", "on-b")}
        assert set(rows[0]) == {"host", "name", "state", "pid"}

        b.down()
        try:
            one_down = run(here, "list", "--all-remotes", "--json")
            assert one_down.status == 0, one_down
            assert {r["name"] for r in json.loads(one_down.out)} >= {"on-a"}
            assert "on-b" not in one_down.out
            errors = one_down.err.splitlines()
            assert len(errors) == 1 and errors[0].startswith("hivectl: b: cannot reach root@"), errors
            with pytest.raises(RemoteUnreachable) as unreachable:
                remote(here, "b").call("guests")
            assert unreachable.value.code == "unreachable"
            assert run(here, "-H", "b", "list").status == 1
            a.down()
            try:
                all_down = run(here, "list", "--all-remotes")
                assert all_down.status == 1 and len(all_down.err.splitlines()) == 2, all_down
            finally:
                a.up()
        finally:
            b.up()
        assert ok(here, "-H", "b", "list").out.count("on-b") == 1
    finally:
        a.hivectl("destroy", "-f", "on-a")
        b.hivectl("destroy", "-f", "on-b")


def test_host_to_host(bed: Bed) -> None:
    """A namespace host's own hivectl reaches the other over the bridge (what migrate runs on host a)."""
    a, b = bed["a"], bed["b"]
    if "b" not in a.ok("remote", "list").out:
        bed.add_remote(a, "b", b)
    b.ok("create", "seen-from-a")
    try:
        assert "seen-from-a" in a.ok("-H", "b", "list").out
        assert "seen-from-a" not in a.ok("list").out
    finally:
        b.hivectl("destroy", "-f", "seen-from-a")


def test_unknown_errors_are_remote_errors(here: dict[str, str]) -> None:
    """Every failure that crosses the wire is a RemoteError (callers catch one type)."""
    with pytest.raises(RemoteError):
        remote(here, "a").call("info", {"name": "nosuch"})
