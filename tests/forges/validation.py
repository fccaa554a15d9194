"""Each fake forge's check of every request coord sends and every response the fake
returns, against the forge's published description (``openapi/<kind>.json``: see each
file's ``x-coord-source``), with openapi-core, a real OpenAPI 3 validator: unknown
paths or methods, missing or mistyped parameters, bodies and response bodies that do
not match their schemas are all errors.

:func:`skeleton` makes the smallest instance of a schema that validates (every
required property, typed by its schema), which the fakes fill in with what they mean:
GitHub's pull request object requires some 40 fields and its repository another 80,
none of which coord reads, and all of which the validator checks."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import ImmutableMultiDict

HERE = Path(__file__).resolve().parent / "openapi"


@cache
def document(kind: str) -> dict[str, Any]:
    return dict(json.loads((HERE / f"{kind}.json").read_text()))


@cache
def description(kind: str) -> OpenAPI:
    """``kind``'s description, ready to validate against. Not checked again here that it
    is valid OpenAPI: that check (openapi-spec-validator) cost 5-12 CPU seconds for
    GitHub's in every process with a fake in it; it runs once, in
    tests/unit/forge/test_fake_descriptions.py."""
    return OpenAPI.from_dict(document(kind), config=Config(spec_validator_cls=None))


def checked(kind: str) -> None:
    """Raise openapi-spec-validator's error when ``kind``'s description is not valid
    OpenAPI (what :func:`description` leaves out)."""
    from openapi_spec_validator import validate

    validate(document(kind))


def _request(base: str, method: str, path: str, query: list[tuple[str, str]],
             headers: dict[str, str], body: bytes) -> MockRequest:
    return MockRequest(base, method.lower(), path, args=ImmutableMultiDict(query),
                       headers=headers, data=body or None,
                       content_type=headers.get("content-type", "application/json"))


def check_request(kind: str, base: str, method: str, path: str,
                  query: list[tuple[str, str]], headers: dict[str, str],
                  body: bytes) -> str | None:
    """The validator's complaint about a request, or None."""
    try:
        description(kind).validate_request(_request(base, method, path, query, headers, body))
    except Exception as exc:  # openapi-core's errors: one family per kind of mismatch
        return f"{method} {path}: request: {type(exc).__name__}: {exc} {exc.__cause__ or ''}"
    return None


def check_response(kind: str, base: str, method: str, path: str,
                   query: list[tuple[str, str]], headers: dict[str, str], body: bytes,
                   status: int, response: bytes) -> str | None:
    """The validator's complaint about a response, or None."""
    try:
        description(kind).validate_response(
            _request(base, method, path, query, headers, body),
            MockResponse(response, status_code=status))
    except Exception as exc:
        return (f"{method} {path} -> {status}: response: {type(exc).__name__}: {exc} "
                f"{exc.__cause__ or ''}")
    return None


def _resolve(kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document(kind)["components"]["schemas"][name]
    return schema


def _make(kind: str, schema: dict[str, Any], depth: int = 0) -> Any:
    schema = _resolve(kind, schema)
    if "allOf" in schema:
        out: dict[str, Any] = {}
        for part in schema["allOf"]:
            made = _make(kind, part, depth)
            if isinstance(made, dict):
                out.update(made)
        return out
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _make(kind, schema[key][0], depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind_of = schema.get("type")
    if isinstance(kind_of, list):
        kind_of = next(t for t in kind_of if t != "null")
    if schema.get("nullable") and depth > 0:
        return None
    if kind_of == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: _make(kind, props[name], depth + 1) for name in schema.get("required", ())
                if name in props}
    if kind_of == "array":
        return []
    if kind_of == "integer":
        return 1
    if kind_of == "number":
        return 1.0
    if kind_of == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    if fmt == "uri":
        return "https://fake.invalid/"
    if fmt == "email":
        return "forge@fake.invalid"
    return ""


@cache
def _skeleton(kind: str, name: str) -> str:
    schema = document(kind)["components"]["schemas"][name]
    return json.dumps(_make(kind, schema))


def skeleton(kind: str, schema: str, /, **fields: Any) -> dict[str, Any]:
    """The smallest valid instance of ``schema`` with ``fields`` set on it."""
    out: dict[str, Any] = json.loads(_skeleton(kind, schema))
    out.update(copy.deepcopy(fields))
    return out
