"""Preview: the same interpreter on Temporal, with the mirror off, answered synchronously.

A preview is a real run of the interpreter workflow (id `preview-<uuid>`, trigger
`preview`) started with `mirror=False`, so it uses the same step code, mappings, providers
and retry policies but writes nothing to the runs tables. A completed preview returns its
`RunResult`; a failed one carries the same result in its ApplicationError details (the
interpreter attaches it only when the mirror is off), so the steps that ran are still shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api.errors import ApiError
from api.preview_estimate import estimate
from api.state import AppState
from definition.inputs import sample_input, validate_input
from definition.limits import check_input_size
from definition.validation import DefinitionInvalid
from payloads.size_guard import run_limits
from schema.definition import WorkflowDefinition
from schema.preview import PreCallEstimate, PreviewStep, TokenEstimates, WorkflowPreviewResult
from schema.problems import Problem
from schema.run import (
    LlmCacheMode,
    RunResult,
    RunWorkflowInput,
    StepError,
    StepRecord,
    StepWork,
)
from schema.run_labels import PREVIEW_TRIGGER, run_details, run_summary
from schema.search_attributes import SA_ENVIRONMENT, SA_SLUG, SA_TRIGGER, SA_VERSION
from schema.workflow_names import WORKFLOW_NAME
from store.references import References

PREVIEW_PREFIX = "preview-"


def relocate(exc: DefinitionInvalid, prefix: str) -> DefinitionInvalid:
    """The same problems, pointing into a definition nested in the request at `prefix`."""
    return DefinitionInvalid([p.model_copy(update={"pointer": prefix + p.pointer})
                              for p in exc.problems], str(exc))


def clone(value: Any, where: str, warnings: list[str]) -> Any:
    """A deep, JSON-safe copy; the raw value when it cannot be copied."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        warnings.append(f"{where} could not be cloned and is returned as is")
        return value


def preview_input(definition: WorkflowDefinition, given: dict[str, Any] | None,
                  use_sample_data: bool) -> dict[str, Any]:
    """The input to preview with: sample values first, explicit values over them."""
    data = {**sample_input(definition), **(given or {})} if use_sample_data else (given or {})
    return validate_input(definition, data)


def _failure_result(exc: WorkflowFailureError, preview_id: str) -> tuple[RunResult, StepError]:
    cause = exc.cause
    result = RunResult(run_id=preview_id, status="failed")
    error = StepError(type="internal_error", message=str(cause or exc))
    if isinstance(cause, ApplicationError):
        error = StepError(type=cause.type or "internal_error", message=cause.message)
        if cause.details:
            with contextlib.suppress(ValueError):
                result = RunResult.model_validate(cause.details[0])
    failed = [s.error for s in result.steps if s.status == "failed" and s.error]
    return result, failed[-1] if failed else error


def _step(record: StepRecord, warnings: list[str]) -> PreviewStep:
    duration = None
    if record.started_at and record.finished_at:
        duration = (record.finished_at - record.started_at).total_seconds() * 1000
    warnings.extend(f"{record.step_id}: {w}" for w in record.warnings)
    work = {name: getattr(record, name) for name in StepWork.model_fields}
    return PreviewStep(
        **work, step_id=record.step_id, step_index=record.step_index, name=record.name,
        type=record.type, status=record.status,
        input=clone(record.input, f"steps.{record.step_id}.input", warnings),
        output=clone(record.output, f"steps.{record.step_id}.output", warnings),
        error=record.error, started_at=record.started_at, finished_at=record.finished_at,
        duration_ms=duration)


def _result(definition: WorkflowDefinition, preview_id: str, workflow_id: str,
            version: int | None, run_input: dict[str, Any], use_sample_data: bool,
            result: RunResult, error: StepError | None, started: datetime,
            before_call: PreCallEstimate) -> WorkflowPreviewResult:
    warnings: list[str] = []
    steps = [_step(r, warnings) for r in sorted(result.steps, key=lambda r: r.step_index)]
    done = {s.step_id for s in steps}
    # Steps after a failure never ran: listed as skipped so the preview shows the whole plan.
    steps += [PreviewStep(step_id=s.id, step_index=i, name=s.name, type=s.type,
                          status="skipped")
              for i, s in enumerate(definition.steps) if s.id not in done]
    tokens_in = sum(s.tokens_in for s in steps)
    tokens_out = sum(s.tokens_out for s in steps)
    finished = datetime.now(UTC)
    return WorkflowPreviewResult(
        preview_id=preview_id, workflow_id=workflow_id, workflow_version=version,
        status=result.status, input=clone(run_input, "input", warnings),
        used_sample_data=use_sample_data,
        output=clone(result.output, "output", warnings), error=error,
        started_at=started, finished_at=finished,
        duration_ms=(finished - started).total_seconds() * 1000, steps=steps,
        warnings=warnings,
        token_estimates=TokenEstimates(input_tokens=tokens_in, output_tokens=tokens_out,
                                       total_tokens=tokens_in + tokens_out,
                                       estimated_cost=result.actual_cost,
                                       before_call=before_call))


async def run_preview(state: AppState, environment: str, definition: WorkflowDefinition, *,
                      workflow_id: str, version: int | None, given: dict[str, Any] | None,
                      use_sample_data: bool, wait_seconds: float,
                      llm_cache: LlmCacheMode | None = None,
                      side_effects: bool = False,
                      max_cost_usd: float | None = None) -> WorkflowPreviewResult:
    """Run the definition once without the mirror and describe what happened."""
    check_input_size(given or {}, state.settings.limits)
    run_input = preview_input(definition, given, use_sample_data)
    definition, children = await References(state.store, environment).resolve(definition)
    before_call = estimate(definition, run_input)  # before anything is called
    preview_id = f"{PREVIEW_PREFIX}{uuid.uuid4()}"
    started = datetime.now(UTC)
    workflow_input = RunWorkflowInput(
        run_id=preview_id, environment=environment, workflow_id=workflow_id,
        workflow_slug=definition.id, workflow_version=version or 0, definition=definition,
        input=run_input, trigger=PREVIEW_TRIGGER, mirror=False, children=children,
        max_cost_usd=max_cost_usd or definition.max_cost_usd,
        limits=run_limits(state.settings),
        llm_cache=llm_cache or state.settings.llm_cache.defaults(environment).previews,
        side_effects=side_effects)
    try:
        client = await state.temporal(environment)
        handle = await client.start_workflow(
            WORKFLOW_NAME, workflow_input, id=preview_id, result_type=RunResult,
            task_queue=state.settings.temporal.task_queue,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_SLUG, definition.id),
                SearchAttributePair(SA_ENVIRONMENT, environment),
                SearchAttributePair(SA_TRIGGER, PREVIEW_TRIGGER),
                SearchAttributePair(SA_VERSION, version or 0),
            ]),
            static_summary=run_summary(workflow_input),
            static_details=run_details(workflow_input))
    except (RPCError, RuntimeError, OSError) as exc:
        raise ApiError(503, "temporal_unavailable", f"could not start the preview: {exc}") \
            from exc
    error: StepError | None = None
    try:
        result = await asyncio.wait_for(handle.result(), timeout=wait_seconds)
    except WorkflowFailureError as exc:
        result, error = _failure_result(exc, preview_id)
    except TimeoutError:
        with contextlib.suppress(RPCError):
            await handle.cancel()
        message = f"the preview did not finish within {wait_seconds:g} s and was cancelled"
        raise ApiError(504, "preview_timeout", message, [Problem(
            pointer="/timeoutSeconds", message=message, field="timeoutSeconds")]) from None
    return _result(definition, preview_id, workflow_id, version, run_input, use_sample_data,
                   result, error, started, before_call)
