"""A schema-driven fuzzer: requests made up from hivectld's own OpenAPI document, over its real socket.

For every operation in ``/1.0/openapi.json`` hypothesis draws path, query and body values from the
declared schemas (names that exist on the host mixed with arbitrary text), sends them, and requires that
no answer is a 5xx and that every answer validates against the schema the document declares for its
status (``default``: the error envelope). Changes are sent with ``dry_run`` (planned, validated, refused
or answered, but never applied: a made-up path or URL must not make the daemon write to this machine's
real file system, which it would do as root); reads run for real.

The validator below covers the part of JSON Schema that the document uses (``$ref``, ``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``anyOf``, ``const``, ``enum``), and
refuses anything else it meets, so a schema it cannot check fails the test instead of passing it.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.daemon.conftest import Daemon  # noqa: E402

KNOWN = ["fz", "fz@s1", "public", "default", "disk0", "tank", "em0", "console", "1G", "tcp", "8080", "fz:80"]
TEXT = st.one_of(st.sampled_from(KNOWN), st.text(string.printable, max_size=12),
                 st.text(max_size=6))  # arbitrary unicode too
SKIP_KEYS = {"description", "title", "default", "examples", "format"}


@pytest.fixture(scope="module")
def fuzzed(shared: Daemon) -> Iterator[tuple[Daemon, dict[str, Any]]]:
    reply = shared.post("/1.0/guests", json={"name": "fz", "size": "1G"})
    assert shared.wait_op(reply.headers["location"])["status"] == "Success"
    schema = shared.get("/1.0/openapi.json").json()
    yield shared, schema


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def strategy(document: dict[str, Any], schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    schema = resolve(document, schema)
    if "anyOf" in schema:
        return st.one_of([strategy(document, s) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "string":
        return TEXT
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(-5, 10**12)
    if kind == "number":
        return st.floats(-5, 1e6, allow_nan=False)
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(strategy(document, schema.get("items", {"type": "string"})), max_size=3)
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        extra = schema.get("additionalProperties")
        fixed = st.fixed_dictionaries(
            {k: strategy(document, v) for k, v in properties.items() if k in required},
            optional={k: strategy(document, v) for k, v in properties.items() if k not in required})
        if isinstance(extra, dict):
            return st.tuples(fixed, st.dictionaries(TEXT, strategy(document, extra), max_size=3)).map(
                lambda pair: {**pair[1], **pair[0]})
        return fixed
    return st.one_of(TEXT, st.integers(), st.booleans())  # ``{}`` (Any): anything


def problems(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Why ``value`` does not validate against ``schema`` (empty when it does)."""
    schema = resolve(document, schema)
    unknown = set(schema) - {"type", "properties", "required", "additionalProperties", "items", "anyOf",
                             "const", "enum", *SKIP_KEYS}
    if unknown:
        return [f"{where}: the validator does not know {sorted(unknown)}"]
    if "anyOf" in schema:
        if any(not problems(document, s, value, where) for s in schema["anyOf"]):
            return []
        return [f"{where}: {value!r} matches none of anyOf"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} != const {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    kind = schema.get("type")
    checks = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}
    if kind in checks and not isinstance(value, checks[kind]):
        return [f"{where}: {value!r} is not {kind}"]
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return [f"{where}: {value!r} is not integer"]
    if kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
        return [f"{where}: {value!r} is not number"]
    found: list[str] = []
    if kind == "array":
        for i, item in enumerate(value):
            found += problems(document, schema.get("items", {}), item, f"{where}[{i}]")
    if kind == "object":
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}: missing {key}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found += problems(document, properties[key], item, f"{where}.{key}")
            elif extra is False:
                found.append(f"{where}: unexpected {key}")
            elif isinstance(extra, dict):
                found += problems(document, extra, item, f"{where}.{key}")
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, verb, spec) for path, verbs in sorted(document["paths"].items())
            for verb, spec in sorted(verbs.items())]


def test_the_validator_can_fail(shared: Daemon) -> None:
    document = shared.get("/1.0/openapi.json").json()
    envelope = {"$ref": "#/components/schemas/Error"}
    assert problems(document, envelope, {"type": "error", "error_code": 404, "error": "x", "code": "not_found"}) == []
    assert problems(document, envelope, {"type": "error", "error_code": "404", "error": "x", "code": "n"})
    assert problems(document, envelope, {"type": "sync", "error_code": 404, "error": "x", "code": "n"})
    assert problems(document, {"type": "object", "uniqueItems": True}, {}), "unknown keywords must fail"


@pytest.fixture(scope="module")
def document(fuzzed: tuple[Daemon, dict[str, Any]]) -> dict[str, Any]:
    return fuzzed[1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "endpoint" in metafunc.fixturenames:
        from hivectl.daemon.app import create_app

        spec = create_app("/nonexistent").openapi()  # the same document the daemon serves, for the ids
        cases = [(path, verb) for path, verb, _ in operations(spec)]
        metafunc.parametrize("endpoint", cases, ids=[f"{verb.upper()} {path}" for path, verb in cases])


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_5xx_and_every_answer_fits_the_schema(fuzzed: tuple[Daemon, dict[str, Any]], endpoint: tuple[str, str],
                                                 data: st.DataObject) -> None:
    daemon, document = fuzzed
    path, verb = endpoint
    spec = document["paths"][path][verb]
    url, query = path, {}
    for parameter in spec.get("parameters", []):
        if parameter["name"] == "dry_run":
            query["dry_run"] = "1"  # see the module docstring
            continue
        value = data.draw(strategy(document, parameter["schema"]) if parameter.get("required") else
                          st.one_of(st.none(), strategy(document, parameter["schema"])), label=parameter["name"])
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", quote(str(value or "x"), safe="") or "x")
        elif value is not None:
            query[parameter["name"]] = value
    kwargs: dict[str, Any] = {"params": query}
    body = spec.get("requestBody")
    if body is not None:
        schema = body["content"]["application/json"]["schema"]
        value = data.draw(strategy(document, schema) if body.get("required") else
                          st.one_of(st.none(), strategy(document, schema)), label="body")
        if value is not None:
            kwargs["json"] = value
    if verb in ("post", "put", "patch", "delete") and "dry_run" not in query and path.startswith("/1.0/operations"):
        pass  # cancelling an operation is harmless: they are this test's own (and made-up ids are 404)
    elif verb != "get" and "dry_run" not in query:
        pytest.fail(f"{verb.upper()} {path} changes something and has no dry_run: the fuzzer would apply it")
    reply = daemon.client.request(verb.upper(), url, **kwargs)
    assert reply.status_code < 500, f"{verb.upper()} {url} {kwargs}: {reply.status_code} {reply.text}"
    responses = spec["responses"]
    declared = responses.get(str(reply.status_code)) or responses["default"]
    schema = declared["content"]["application/json"]["schema"]
    body_json = reply.json()
    found = problems(document, schema, body_json)
    assert not found, f"{verb.upper()} {url} {kwargs}: {reply.status_code} {reply.text}: {found}"
