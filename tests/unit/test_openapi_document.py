"""Our OpenAPI document describes the audio routes with OpenAI's request fields, so generated clients agree."""

from __future__ import annotations

from typing import Any

import pytest

from api import ApiSettings, create_app
from tests.support.openai_schemas import component


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(ApiSettings()).openapi()  # no lifespan: nothing connects
    return document


def _request_schema(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    body = openapi["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = openapi["components"]["schemas"][name]
    return schema


def _resolve(schema: dict[str, Any], openapi: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        found: dict[str, Any] = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return found
    return schema


def _types(schema: dict[str, Any], openapi: dict[str, Any]) -> set[str]:
    options = [_resolve(o, openapi) for o in schema.get("anyOf", [schema])]
    return {o.get("type", "object") for o in options if o.get("type") != "null"}


def _enum(schema: dict[str, Any], openapi: dict[str, Any]) -> set[str]:
    for option in [schema, *schema.get("anyOf", []), *schema.get("allOf", [])]:
        if "$ref" in option:
            option = openapi["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        if "enum" in option:
            return set(option["enum"])
        if "items" in option:
            return _enum(option["items"], openapi)
    return set()


@pytest.mark.parametrize(
    ("path", "reference"),
    [
        ("/v1/audio/transcriptions", "CreateTranscriptionRequest"),
        ("/v1/audio/translations", "CreateTranslationRequest"),
    ],
)
def test_request_fields_match_openai(openapi: dict[str, Any], path: str, reference: str) -> None:
    ours = _request_schema(openapi, path)
    theirs = component(reference)
    fields = {name.removesuffix("[]"): spec for name, spec in ours["properties"].items()}
    assert set(fields) <= set(theirs["properties"]), set(fields) - set(theirs["properties"])
    assert {"file", "model"} <= set(ours["required"]) and set(theirs["required"]) <= set(ours["required"])
    for name, spec in fields.items():
        expected = theirs["properties"][name]
        if name == "file":
            assert spec.get("format") in ("binary", None) and _types(spec, openapi) == {"string"}
            continue
        if "$ref" in expected:
            expected = component(expected["$ref"].rsplit("/", 1)[-1])
        if "enum" in expected or "items" in expected:
            allowed = set(expected.get("enum") or expected["items"].get("enum", []))
            assert _enum(spec, openapi) <= allowed, name
        if expected.get("type") in ("string", "number", "boolean", "array"):
            assert _types(spec, openapi) <= {expected["type"], "integer"}, name


def test_transcription_exposes_every_whisper_relevant_field(openapi: dict[str, Any]) -> None:
    fields = set(_request_schema(openapi, "/v1/audio/transcriptions")["properties"])
    assert {
        "file",
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
        "stream",
    } <= fields
