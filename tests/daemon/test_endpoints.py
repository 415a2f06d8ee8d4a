"""Every endpoint of the daemon answers what the Python API answers, over the socket of a real hivectld.

For each operation of the catalog one request goes through the real daemon (changes as ``?dry_run=1``,
reads for real) and the same call goes to ``hivectl.api.Hivectl`` in this process, on the same vm_dir: the
daemon's result must equal the method's (after hiding secrets, and with the random parts of plans, such as
staging names, UUIDs and MACs, replaced), and its error the method's error message with its code. An
operation added to the Python API is checked here without anyone writing a case for it (its arguments are
then made up from its parameters' types); ``EXAMPLES`` gives realistic ones where that matters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from hivectl import catalog
from hivectl.api import Hivectl
from hivectl.daemon import envelope
from hivectl.daemon.routes import redact_result, route_of
from tests.daemon.conftest import Daemon

G = "ep"  # the guest the examples act on

EXAMPLES: dict[str, dict[str, Any]] = {
    "add": {"name": G, "device": "disk", "spec": "1G"},
    "autostart_add": {"names": [G]}, "autostart_remove": {"names": [G]},
    "backup": {"name": G}, "clone": {"spec": G, "new": "epclone"},
    "create": {"name": "epnew", "size": "1G", "cpu": "2"},
    "datastore_add": {"name": "ds2", "path": "/nonexistent/ds2"}, "datastore_remove": {"name": "ds2"},
    "datastore_iso": {"name": "iso2", "path": "/nonexistent/iso"},
    "datastore_img": {"name": "img2", "path": "/nonexistent/img"},
    "destroy": {"name": G}, "disk_resize": {"name": G, "disk": "disk0", "size": "2G"},
    "image_create": {"name": G}, "image_destroy": {"uuid": "5b176960-36d7-4f7d-8971-65f39dfec5e0"},
    "image_provision": {"uuid": "5b176960-36d7-4f7d-8971-65f39dfec5e0", "new": "prov"},
    "iso_download": {"url": "http://127.0.0.1:9/install.iso"},
    "img_download": {"url": "http://127.0.0.1:9/cloud.img"},
    "import_guest": {"bhyve": "bhyve -c 1 -m 1G -s 0,hostbridge -s 31,lpc -l com1,stdio handmade"},
    "install": {"name": G, "media": "nosuch.iso"}, "rename": {"name": G, "new": "epren"},
    "restore": {"file": "/nonexistent/backup.tar.gz"}, "rollback": {"spec": f"{G}@s1"},
    "set": {"name": G, "keys": {"cpu": "2", "vnc_password": "sesame"}},
    "set_settings": {"settings": {"console": "tmux"}}, "settings": {"names": ["console"]},
    "snapshot": {"spec": f"{G}@s1"}, "stop": {"names": [G]},
    "switch_add": {"name": "public", "interface": "em0"},
    "switch_address": {"name": "public", "address": "10.9.0.1/24"},
    "switch_create": {"name": "sw2", "address": "10.8.0.1/24"}, "switch_destroy": {"name": "public"},
    "switch_forward_add": {"name": "public", "proto": "tcp", "host_port": "8080", "target": f"{G}:80"},
    "switch_forward_remove": {"name": "public", "proto": "tcp", "host_port": "8080"},
    "switch_info": {"names": ["public"]}, "switch_private": {"name": "public", "value": "on"},
    "switch_remove": {"name": "public", "interface": "em0"}, "switch_vlan": {"name": "public", "vlan": "10"},
    "tags_add": {"name": G, "tags": ["web"]}, "tags_remove": {"name": G, "tags": ["web"]},
    "tags_find": {"tag": "web"}, "template_show": {"name": "default"},
}

_RANDOM = [
    (re.compile(r"hivectl-(staging|tombstone)-([\w.-]+?)-[0-9a-f]{6,}"), r"hivectl-\1-\2-R"),
    (re.compile(r"\.\d{8}T\d{6}(\.\d+)?Z\."), ".TIME."),  # a backup's file name
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"58:9c:fc(:[0-9a-f]{2}){3}"), "MAC"),
]


def normal(value: Any) -> Any:
    """``value`` as JSON carries it, with the parts a planner draws at random replaced."""
    if isinstance(value, str):
        for pattern, replacement in _RANDOM:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def made_up(param: catalog.Param) -> Any:
    """An argument for a parameter no example covers, from its type."""
    text = param.type_text
    if text.startswith("list"):
        return [G]
    if text.startswith("dict"):
        return {"description": "x"}
    if text.startswith("bool"):
        return False
    if text.startswith("int"):
        return 1
    if text.startswith("float"):
        return 1.0
    return G if param.name in ("name", "spec") else "x"


def arguments(op: catalog.Operation) -> dict[str, Any]:
    if op.name in EXAMPLES:
        return dict(EXAMPLES[op.name])
    return {p.name: made_up(p) for p in op.params if p.required}


def request(daemon: Daemon, op: catalog.Operation, args: dict[str, Any]) -> Any:
    route = route_of(op)
    path = route.path
    rest = dict(args)
    if route.placeholder is not None:
        value = rest.pop(route.fills or route.placeholder)
        value = value[0] if isinstance(value, list) else value
        path = path.replace("{" + route.placeholder + "}", str(value))
    params: dict[str, Any] = {"dry_run": 1} if op.mutating else {}
    if route.in_query:
        params.update(rest)
        return daemon.client.request(route.verb, f"/1.0{path}", params=params)
    return daemon.client.request(route.verb, f"/1.0{path}", params=params, json=rest)


def outcome_of_api(op: catalog.Operation, args: dict[str, Any], vm_dir: Any) -> tuple[str, Any]:
    try:
        result = catalog.invoke(Hivectl(vm_dir), op, args, dry_run=op.mutating)
    except Exception as error:
        status, code = envelope.classify(error)
        return "error", (status, code, envelope.message(error))
    return "ok", normal(json.loads(json.dumps(redact_result(result))))


def outcome_of_daemon(reply: Any) -> tuple[str, Any]:
    body = reply.json()
    if reply.status_code == 200:
        assert body["type"] == "sync" and body["status_code"] == 200, body
        return "ok", normal(body["metadata"])
    assert body["type"] == "error" and body["error_code"] == reply.status_code, body
    return "error", (reply.status_code, body["code"], body["error"])


def metric_types(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("# TYPE")]


@pytest.fixture(scope="module")
def prepared(shared: Daemon) -> Iterator[Daemon]:
    reply = shared.post("/1.0/guests", json={"name": G, "size": "1G"})
    assert shared.wait_op(reply.headers["location"])["status"] == "Success"
    assert shared.post(f"/1.0/guests/{G}/tags/add", json={"tags": ["web"]}).status_code == 200
    yield shared


@pytest.mark.parametrize("name", [op.name for op in catalog.operations()])
def test_endpoint_answers_as_the_python_api(prepared: Daemon, name: str) -> None:
    op = catalog.get(name)
    args = arguments(op)
    reply = request(prepared, op, args)
    assert reply.status_code < 500, reply.text
    answered, expected = outcome_of_daemon(reply), outcome_of_api(op, args, prepared.vm_dir)
    if op.name == "metrics" and answered[0] == expected[0] == "ok":  # counters move between two scrapes
        answered, expected = (metric_types(answered[1]), metric_types(expected[1]))
    assert answered == expected
    if op.name == "set":
        assert "sesame" not in reply.text and "sesame" not in prepared.log.read_text()


def test_examples_name_real_operations() -> None:
    assert set(EXAMPLES) <= set(catalog.by_name()), set(EXAMPLES) - set(catalog.by_name())
