"""Model text to JSON, checked against the step's ``outputSchema``."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.validators import validator_for
from temporalio.exceptions import ApplicationError

from schema.errors import ErrorType

MAX_REPORTED_ERRORS = 5
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _violation(message: str, errors: list[dict[str, str]] | None = None) -> ApplicationError:
    # Retrying the same prompt cannot be expected to fix a schema mismatch.
    return ApplicationError(message, {"errors": errors or []}, type=ErrorType.OUTPUT_SCHEMA,
                            non_retryable=True)


def parse_json(text: str) -> Any:
    """The JSON value in a model's answer, tolerating a surrounding code fence."""
    fenced = _FENCE.match(text)
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError as exc:
        raise _violation(f"output is not valid JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}): {text[:200]!r}") from exc


@lru_cache(maxsize=256)
def _validator(canonical: str) -> Any:
    """The checked validator of one schema (by its canonical JSON), or its SchemaError's
    message: checking a schema costs ~0.8 ms, and a step sends the same one every call."""
    schema = json.loads(canonical)
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return cls(schema)


def validated_output(text: str, schema: dict[str, Any]) -> Any:
    """Parse ``text`` as JSON and validate it; raise OUTPUT_SCHEMA naming each violation."""
    value = parse_json(text)
    validator = _validator(json.dumps(schema, sort_keys=True))
    if isinstance(validator, str):
        raise _violation(f"outputSchema is not a valid JSON Schema: {validator}")
    found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not found:
        return value
    problems = [
        {"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": e.message}
        for e in found[:MAX_REPORTED_ERRORS]
    ]
    listed = "; ".join(f"at {p['path']}: {p['message']}" for p in problems)
    more = f" (and {len(found) - len(problems)} more)" if len(found) > len(problems) else ""
    raise _violation(f"output does not match outputSchema: {listed}{more}", problems)
