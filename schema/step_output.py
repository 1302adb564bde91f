"""The one check of a step's output size (``limits.max_step_output_bytes``), for the
interpreter (every step kind) and for activities that can refuse an answer early."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json

from schema.errors import ErrorType
from schema.run import StepError


def output_problem(output: Any, limit: int) -> StepError | None:
    """Why a step's output cannot be kept, or None: over ``limit`` bytes as JSON, or not
    serializable at all (nested deeper than the serializer goes)."""
    try:
        size = len(to_json(output))
    except ValueError as exc:  # PydanticSerializationError is one
        return StepError(type=ErrorType.PAYLOAD_INVALID,
                         message=f"the step's output cannot be serialized: {exc}"[:400])
    if size <= limit:
        return None
    return StepError(
        type=ErrorType.OUTPUT_TOO_LARGE,
        message=f"the step's output is {size:,} bytes as JSON, over the {limit:,}-byte limit "
                "for one step (limits.max_step_output_bytes)",
        details={"sizeBytes": size, "limitBytes": limit})
