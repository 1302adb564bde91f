"""Turns one definition step into one activity call and its outcome. Deterministic."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.activities import (
        ToolRequest,
        ToolResult,
        TransformRequest,
        TransformResult,
    )
    from schema.definition import LlmStep, ToolStep, TransformStep
    from schema.run import RunLimits

from workflows.llm_step import run_llm_step
from workflows.options import step_options
from workflows.outcome import StepOutcome

__all__ = ["StepOutcome", "run_step"]


async def run_step(
    step: LlmStep | ToolStep | TransformStep,
    run_id: str,
    mapped: dict[str, Any],
    context: dict[str, Any],
    limits: RunLimits,
    budget_remaining_usd: float | None = None,
) -> StepOutcome:
    """Execute one step as its activity, with the step's own retry policy.

    LLM steps (one model or several) go through ``run_llm_step``, which raises
    ``LlmStepFailed``; ``limits`` bound their templates; ``budget_remaining_usd`` is what
    the run may still spend.
    """
    if isinstance(step, LlmStep):
        return await run_llm_step(step, run_id, mapped, context, limits, budget_remaining_usd)
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
    request = TransformRequest(run_id=run_id, step_id=step.id, input=mapped,
                               expression=step.expression)
    # The regular activity, for runs recorded before transforms became self-mirroring local
    # activities (workflows/runner.py: StepRunner._transform).
    transformed: TransformResult = await workflow.execute_activity(
        opts.activity, request, result_type=TransformResult,
        start_to_close_timeout=opts.start_to_close, retry_policy=opts.retry_policy,
        summary=opts.summary)
    return StepOutcome(output=transformed.output, attempts=transformed.attempt)
