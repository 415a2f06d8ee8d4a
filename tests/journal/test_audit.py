"""The audit seam and the events it implies, through the real CLI (a separate process) and hivectl.api."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hivectl.api import Hivectl
from hivectl.errors import HivectlError
from hivectl.journal.who import acting_as
from tests.cli_helpers import hivectl

PASSWORD = "Sw0rdfish-never-logged"


def lines(vm_dir: Path, name: str) -> list[dict]:
    path = vm_dir / ".config" / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def audit(vm_dir: Path) -> list[dict]:
    return lines(vm_dir, "audit.jsonl")


def events(vm_dir: Path) -> list[dict]:
    return lines(vm_dir, "events.jsonl")


def test_a_cli_change_is_one_line_with_its_result_and_event(vmdir: Path) -> None:
    before = len(audit(vmdir))
    result = hivectl("create", "-t", "debian", "-s", "1G", "web", env={"SUDO_USER": "alice"})
    assert result.status == 0, result.err
    new = audit(vmdir)[before:]
    assert len(new) == 1
    line = new[0]
    assert (line["operation"], line["target"], line["result"]) == ("create", ["/guests/web"], "ok")
    assert line["arguments"]["size"] == "1G" and line["arguments"]["template"] == "debian"
    assert line["who"] == {"uid": os.getuid(), "sudo_user": "alice"}
    assert [(e["type"], e["target"]) for e in events(vmdir)][-1] == ("created", "/guests/web")
    assert stat.S_IMODE((vmdir / ".config" / "audit.jsonl").stat().st_mode) == 0o600


def test_a_failed_change_records_the_cli_message(vmdir: Path) -> None:
    result = hivectl("destroy", "nothere")
    assert result.status == 1
    line = audit(vmdir)[-1]
    assert (line["operation"], line["result"]) == ("destroy", "error")
    assert result.err == f"hivectl: {line['message']}\n", "the same one line the CLI prints"
    assert events(vmdir) == [] or events(vmdir)[-1]["type"] != "destroyed"


def test_dry_runs_and_reads_write_nothing(vmdir: Path) -> None:
    assert hivectl("create", "-t", "debian", "-s", "1G", "web").status == 0
    config = vmdir / ".config"
    before = {p.name: p.stat().st_size for p in config.iterdir()}
    for argv in (["destroy", "--dry-run", "web"], ["list"], ["info", "web"], ["audit"], ["events"],
                 ["audit", "--guest", "web", "--json"], ["datastore", "list"], ["tags", "list", "web"]):
        result = hivectl(*argv)
        assert result.status == 0, (argv, result.err)
    assert {p.name: p.stat().st_size for p in config.iterdir()} == before


def test_the_python_api_goes_through_the_same_seam(vmdir: Path) -> None:
    hv = Hivectl()
    hv.create("api1", template="debian", size="1G")
    assert hv.create("api2", template="debian", size="1G", dry_run=True) != []
    with pytest.raises(HivectlError):
        hv.rename("absent", "other")
    with acting_as({"uid": 1001, "token": "t-42"}):
        hv.tags_add("api1", ["eu"])
    tail = audit(vmdir)[-3:]
    assert [(a["operation"], a["result"]) for a in tail] == [("create", "ok"), ("rename", "error"),
                                                             ("tags_add", "ok")]
    assert tail[-1]["who"] == {"uid": 1001, "token": "t-42"}, "the daemon's principal, not the process"
    assert [e["type"] for e in hv.events(guest="api1")] == ["created", "config-changed"]
    assert [a["operation"] for a in hv.audit(guest="api1")] == ["create", "tags_add"]


def test_secrets_never_reach_either_log(vmdir: Path, tmp_path: Path) -> None:
    hv = Hivectl()
    hv.create("sec", template="debian", size="1G")
    hv.set("sec", graphics="yes", vnc_password=PASSWORD)  # through the API
    with pytest.raises(HivectlError):
        hv.set("sec", vnc_password=PASSWORD + ",bad")  # refused: its error must not carry the value either
    editor = tmp_path / "editor.sh"  # through the CLI: configure with an editor that adds a password
    editor.write_text(f"#!/bin/sh\necho 'vnc_password=\"{PASSWORD}2\"' >> \"$1\"\n")
    editor.chmod(0o755)
    result = hivectl("configure", "sec", env={"EDITOR": str(editor)})
    assert result.status == 0, result.err
    assert f"{PASSWORD}2" in (vmdir / "sec" / "sec.conf").read_text(), "the password was really set"
    with acting_as({"uid": 0}):  # a daemon request carrying one as a keyword argument
        hv.set("sec", vnc_password=PASSWORD + "3")
    text = "".join(p.read_text() for p in (vmdir / ".config").glob("*.jsonl*"))
    assert PASSWORD not in text
    sets = [a for a in audit(vmdir) if a["operation"] == "set"]
    assert [a["arguments"]["keys"]["vnc_password"] if "keys" in a["arguments"] else a["arguments"]["vnc_password"]
            for a in sets] == ["(hidden)"] * 3


def test_cli_filters_and_since(vmdir: Path) -> None:
    for name in ("a1", "a2"):
        assert hivectl("create", "-t", "debian", "-s", "1G", name).status == 0
    mine = [json.loads(line) for line in hivectl("audit", "--guest", "a2", "--json").out.splitlines()]
    assert [(a["operation"], a["target"]) for a in mine] == [("create", ["/guests/a2"])]
    first = audit(vmdir)[0]["seq"]
    after = [json.loads(line)["seq"] for line in hivectl("audit", "--since", str(first), "--json").out.splitlines()]
    assert after == [a["seq"] for a in audit(vmdir)][1:]
    assert len(hivectl("audit", "--since", "1h").out.splitlines()) == len(audit(vmdir))
    assert hivectl("audit", "--since", "2999-01-01").out == ""
    bad = hivectl("audit", "--since", "yesterday")
    assert bad.status == 2 and "--since 'yesterday'" in bad.err
    text = hivectl("events", "--guest", "a1").out.splitlines()
    assert len(text) == 1 and "created  /guests/a1" in text[0]


def test_a_configuration_text_is_logged_without_its_secret(vmdir: Path) -> None:
    hv = Hivectl()
    hv.create("txt", template="debian", size="1G")
    text = (vmdir / "txt" / "txt.conf").read_text() + f'vnc_password="{PASSWORD}"\n'
    hv.configure("txt", text)
    assert PASSWORD in (vmdir / "txt" / "txt.conf").read_text()
    assert PASSWORD not in (vmdir / ".config" / "audit.jsonl").read_text()
    assert audit(vmdir)[-1]["operation"] == "configure" and audit(vmdir)[-1]["result"] == "ok"


def test_an_api_object_made_for_a_principal_audits_as_that_principal(vmdir: Path) -> None:
    from hivectl.auth.principal import Principal

    hv = Hivectl(principal=Principal(0, "tok1", "root"))
    hv.create("forp", template="debian", size="1G")
    assert audit(vmdir)[-1]["who"] == {"uid": 0, "token": "tok1", "user": "root"}
    assert events(vmdir)[-1]["who"] == {"uid": 0, "token": "tok1", "user": "root"}
