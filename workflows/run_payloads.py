"""What a run hands Temporal and takes from it, checked where a retry could not help. Pure.

- The run's input arrives raw: the interpreter decodes it itself, so an input the worker
  cannot decode (nested deeper than the decoder goes, say) fails the run ``input_invalid``
  with a run row saying so, instead of failing its first workflow task forever.
- The run's result is checked against the payload limit before the run is recorded
  ``completed``; a mirrored run's result leaves its steps out (they are in the mirror), so
  it does not carry every step's input and output a second time.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schema.errors import ErrorType
    from schema.run import RunRecord, RunResult, RunWorkflowInput, StepError


class InputInvalid(Exception):
    """The run's input could not be decoded."""

    def __init__(self, error: StepError) -> None:
        super().__init__(error.message)
        self.error = error


def decode_input(raw: RawValue) -> RunWorkflowInput:
    """The run's input; raises ``InputInvalid`` naming why it cannot be read."""
    try:
        run: RunWorkflowInput = workflow.payload_converter().from_payload(
            raw.payload, RunWorkflowInput)
    except workflow.NondeterminismError:
        raise
    except Exception as exc:  # any decode failure is the input's
        reason = str(exc.message if isinstance(exc, ApplicationError) else exc)
        reason = " ".join(reason.split())[:300]
        raise InputInvalid(StepError(
            type=ErrorType.INPUT_INVALID,
            message=f"the run's input cannot be decoded: {reason}")) from None
    return run


def refused_record(raw: RawValue, error: StepError, now: datetime) -> RunRecord | None:
    """The failed run row for an input that could not be decoded, from what can still be
    read of it (None when not even the run's workflow and environment can, or the run is
    not mirrored). The input itself is left out: it is what could not be read."""
    try:
        data = json.loads(raw.payload.data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("mirror") is False:
        return None

    def field(name: str) -> Any:
        return data.get(name)

    try:
        uuid.UUID(str(field("workflowId")))
        for name in ("triggerId", "sourceRunId", "parentRunId"):
            if field(name) is not None:
                uuid.UUID(str(field(name)))
        return RunRecord(
            run_id=workflow.info().workflow_id, environment=field("environment"),
            workflow_id=str(field("workflowId")), workflow_version=field("workflowVersion"),
            status="failed", error=error, trigger=field("trigger") or "api",
            trigger_id=field("triggerId"), source_run_id=field("sourceRunId"),
            from_step_id=field("fromStepId"), parent_run_id=field("parentRunId"),
            parent_step_id=field("parentStepId"), started_at=now, finished_at=now)
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def too_large(size: int, limit: int, what: str) -> StepError:
    """The error of a payload over the limit."""
    return StepError(
        type=ErrorType.PAYLOAD_TOO_LARGE,
        message=f"{what} is {size:,} bytes, over the {limit:,}-byte limit for one Temporal "
                "payload (limits.max_payload_bytes)",
        details={"sizeBytes": size, "limitBytes": limit})


def payload_problem(value: Any, limit: int, what: str) -> StepError | None:
    """Why ``value`` cannot be handed to Temporal as one payload, or None."""
    try:
        payloads = workflow.payload_converter().to_payloads([value])
    except ApplicationError as exc:  # the worker's own guard refused it first
        details = exc.details[0] if exc.details and isinstance(exc.details[0], dict) else {}
        size, guard = details.get("sizeBytes"), details.get("limitBytes")
        if isinstance(size, int) and isinstance(guard, int):
            return too_large(size, min(limit, guard), what)
        return StepError(type=exc.type or ErrorType.PAYLOAD_TOO_LARGE, message=exc.message)
    size = payloads[0].ByteSize()
    return too_large(size, limit, what) if size > limit else None


def fitted(result: RunResult, limit: int) -> RunResult:
    """A failed run's partial result, small enough to travel with its failure: without
    the steps' inputs and outputs, or without its steps, when it has to be."""
    if payload_problem(result, limit, "the result") is None:
        return result
    lean = result.model_copy(update={"steps": [
        step.model_copy(update={"input": None, "output": None, "rendered": None})
        for step in result.steps]})
    if payload_problem(lean, limit, "the result") is None:
        return lean
    return result.model_copy(update={"steps": [], "output": None})
