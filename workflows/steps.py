"""Turns one definition step into one activity call and its outcome. Deterministic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.activities import (
        LlmRequest,
        LlmResult,
        ToolRequest,
        ToolResult,
        TransformRequest,
        TransformResult,
    )
    from schema.definition import LlmStep, ToolStep, TransformStep
    from schema.model_ref import resolve_model

from workflows.options import step_options
from workflows.templates import render


@dataclass
class StepOutcome:
    """What a finished step contributes to its record and the run totals."""

    output: Any
    attempts: int = 1
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    model: str | None = None
    provider: str | None = None
    rendered: dict[str, Any] | None = None
    tool_trace: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)


def render_llm_request(
    step: LlmStep, run_id: str, mapped: dict[str, Any], context: dict[str, Any]
) -> LlmRequest:
    """Render the step's prompts; the rendered text is what the activity (and UI) shows."""
    provider, model = resolve_model(step.model, step.provider)
    return LlmRequest(
        run_id=run_id,
        step_id=step.id,
        provider=provider,
        model=model,
        system=render(step.prompt_system, mapped, context) if step.prompt_system else None,
        user=render(step.prompt_user, mapped, context),
        output_schema=step.output_schema,
        temperature=step.temperature,
        max_tokens=step.max_tokens,
    )


async def run_step(
    step: LlmStep | ToolStep | TransformStep,
    run_id: str,
    mapped: dict[str, Any],
    context: dict[str, Any],
) -> StepOutcome:
    """Execute one step as its activity, with the step's own retry policy."""
    if isinstance(step, LlmStep):
        request = render_llm_request(step, run_id, mapped, context)
        opts = step_options(step, request.provider)
        llm: LlmResult = await workflow.execute_activity(
            opts.activity,
            request,
            result_type=LlmResult,
            start_to_close_timeout=opts.start_to_close,
            heartbeat_timeout=opts.heartbeat,
            retry_policy=opts.retry_policy,
            summary=opts.summary,
        )
        return StepOutcome(
            output=llm.output,
            attempts=llm.attempt,
            tokens_in=llm.tokens_in,
            tokens_out=llm.tokens_out,
            cached_tokens=llm.cached_tokens,
            cost=llm.cost,
            model=llm.model,
            provider=llm.provider,
            rendered={"system": request.system, "user": request.user},
            warnings=list(llm.warnings),
        )
    opts = step_options(step)
    if isinstance(step, ToolStep):
        tool: ToolResult = await workflow.execute_activity(
            opts.activity,
            ToolRequest(run_id=run_id, step_id=step.id, tool_name=step.tool_name,
                        args={**step.args, **mapped}),
            result_type=ToolResult,
            start_to_close_timeout=opts.start_to_close,
            retry_policy=opts.retry_policy,
            summary=opts.summary,
        )
        return StepOutcome(
            output=tool.output,
            attempts=tool.attempt,
            tool_trace=[tool.trace.model_dump(mode="json")],
        )
    transformed: TransformResult = await workflow.execute_activity(
        opts.activity,
        TransformRequest(run_id=run_id, step_id=step.id, input=mapped,
                         expression=step.expression),
        result_type=TransformResult,
        start_to_close_timeout=opts.start_to_close,
        retry_policy=opts.retry_policy,
        summary=opts.summary,
    )
    return StepOutcome(output=transformed.output, attempts=transformed.attempt)
