"""The OpenAPI document, as FastAPI writes it, with one correction for multipart forms.

A form field is present (a string or a file) or absent; it cannot be null. FastAPI writes optional form fields as
`anyOf: [<type>, {"type": "null"}]`, which tells clients and fuzzers that a literal null may be sent, and a
multipart encoder then sends the text `null`. Here optional form fields are written as their type alone, still
not required.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = original()
            for name in _multipart_bodies(document):
                schema = document["components"]["schemas"][name]
                for field in schema.get("properties", {}).values():
                    _drop_null(field)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _multipart_bodies(document: dict[str, Any]) -> set[str]:
    names = set()
    for item in document.get("paths", {}).values():
        for operation in item.values():
            form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
            ref = form.get("schema", {}).get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                names.add(ref.rsplit("/", 1)[1])
    return names


def _drop_null(field: dict[str, Any]) -> None:
    options = field.get("anyOf")
    if not options:
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == len(options):
        return
    del field["anyOf"]
    if len(kept) == 1:
        field.update(kept[0])
    else:
        field["anyOf"] = kept
    if field.get("default", "") is None:
        del field["default"]
