"""The OpenAPI document says what the API does: its error answers, and definition bodies.

FastAPI documents a route's success and its own 422 shape (``HTTPValidationError``, which
this API never sends). Here every operation also lists the error answers it can give, all in
the error envelope (``schema.api.ErrorEnvelope``), and the routes that read a definition as
raw JSON (to check its size and point into it) document the definition's schema, so clients
and fuzzers know what a valid body is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from schema.api import ErrorEnvelope
from schema.definition import WorkflowDefinition

_ERRORS: dict[str, str] = {
    "400": "The body could not be read (not UTF-8, or not in the form the route takes)",
    "401": "Missing, invalid or revoked key (or a webhook's signature or replay check failed)",
    "403": "The key may not do this (an api trigger's own key, a cookie without the CSRF header)",
    "404": "Not found in the key's environment",
    "409": "In a state that does not allow it (a finished run, a disabled trigger...)",
    "413": "Over a size limit: request_too_large, definition_too_large, input_too_large",
    "422": "Invalid: every problem with a JSON pointer (validation_error, json_too_deep, "
           "too_many_steps...)",
    "429": "Too many failed keys from this address (too_many_failed_attempts): wait the "
           "Retry-After seconds",
    "503": "Temporal is unavailable",
}
_PREVIEW_TIMEOUT = "The preview did not finish within its timeoutSeconds"
_REF = "#/components/schemas/{model}"
_BYTES = {"type": "string", "contentEncoding": "base64"}
_PAYLOADS = {
    "type": "object", "title": "Payloads", "required": ["payloads"],
    "description": "Temporal Payloads in protobuf JSON (the remote codec protocol)",
    "properties": {"payloads": {"type": "array", "items": {
        "type": "object", "properties": {
            "metadata": {"type": "object", "additionalProperties": _BYTES}, "data": _BYTES}}}},
}


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` by one that completes FastAPI's document (built once)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """The document with error answers and definition schemas (``document`` is changed)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    envelope = _add_model(schemas, ErrorEnvelope, "serialization")
    definition = _add_model(schemas, WorkflowDefinition, "validation")
    # A definition names itself by `id` or by `slug` (the same value): either one will do.
    created = schemas["WorkflowDefinition"]
    created["required"] = [name for name in created.get("required", []) if name != "id"]
    created["anyOf"] = [{"required": ["id"]}, {"required": ["slug"]}]
    # `PUT /{slug}` takes the slug as the definition's id when the body has none.
    update = copy.deepcopy(schemas["WorkflowDefinition"])
    update.pop("anyOf")
    update["title"] = "WorkflowDefinitionUpdate"
    schemas["WorkflowDefinitionUpdate"] = update
    preview = schemas.get("DefinitionPreviewRequest", {}).get("properties", {})
    if "definition" in preview:
        preview["definition"] = definition
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if path == "/api/workflows" and method == "post":
                _body(operation, definition)
            if path == "/codec/{operation}":
                _body(operation, _PAYLOADS)
            if path == "/api/workflows/{slug}" and method == "put":
                _body(operation, {"$ref": _REF.format(model="WorkflowDefinitionUpdate")})
            _errors(operation, envelope, preview_route=path.endswith("/preview"))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and unused not in str(document["paths"]):
            del schemas[unused]
    return document


def _add_model(schemas: dict[str, Any], model: Any, mode: str) -> dict[str, str]:
    """Put a model's schema (and the ones it refers to) into the components; its $ref."""
    schema = model.model_json_schema(ref_template=_REF, mode=mode)
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    schemas[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _body(operation: dict[str, Any], schema: dict[str, Any]) -> None:
    content = operation.setdefault("requestBody", {"required": True}).setdefault("content", {})
    content["application/json"] = {"schema": schema}


def _errors(operation: dict[str, Any], envelope: dict[str, str], *, preview_route: bool) -> None:
    responses = operation.setdefault("responses", {})
    errors = dict(_ERRORS)
    if preview_route:
        errors["504"] = _PREVIEW_TIMEOUT
    for status, description in errors.items():
        # FastAPI's own 422 entry describes a body this API never sends: replaced.
        responses[status] = {"description": description,
                             "content": {"application/json": {"schema": envelope}}}
