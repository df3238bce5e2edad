"""Validating against OpenAI's published audio schemas (../shared/openai/audio-api.schema.json)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "openai" / "audio-api.schema.json"


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def validate(instance: object, name: str) -> None:
    """Raise `jsonschema.ValidationError` unless `instance` matches components/schemas/`name`."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
    jsonschema.validate(instance, schema)


def component(name: str) -> dict[str, Any]:
    found: dict[str, Any] = document()["components"]["schemas"][name]
    return found
