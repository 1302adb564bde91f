"""The one handler table: every step kind, dispatched by its type. Deterministic.

Each kind lives in its own module (``llm_step``, ``control``, ``parallel``, ``map_step``,
``approval``, ``child``; tool and transform here) and depends on ``workflows/scope.py``,
not on the runner.
"""

from __future__ import annotations

from typing import Any, assert_never

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.activities import StepSelfWrite, ToolRequest, ToolResult
    from schema.definition import (
        AgentStep,
        ApprovalStep,
        ConditionStep,
        LlmStep,
        MapStep,
        ParallelStep,
        Step,
        ToolStep,
        TransformStep,
        WorkflowStep,
    )
    from schema.run import StepRecord

from workflows import approval, child, control, map_step, parallel
from workflows.agent_step import run_agent_step
from workflows.llm_step import run_llm_step
from workflows.mirror import StepMirror
from workflows.options import step_options
from workflows.outcome import OutcomeSkipped, StepOutcome
from workflows.scope import Runner

__all__ = ["StepOutcome", "run_kind"]


async def run_tool(runner: Runner, step: ToolStep, mapped: dict[str, Any],
                   own: StepSelfWrite | None) -> StepOutcome:
    """The tool's activity, with the step's own retry policy; its trace on the record (and,
    with ``own``, the step's rows written by the activity)."""
    args = {**step.args, **mapped}
    method = str(args.get("method") or "GET").upper()
    if not runner.scope.side_effects and step.tool_name == "http_request" \
            and method not in ("GET", "HEAD"):
        raise OutcomeSkipped(f"a {method} is a side effect: a preview does not send it "
                             "(allowSideEffects: true does)")
    opts = step_options(step)
    tool: ToolResult = await workflow.execute_activity(
        opts.activity,
        ToolRequest(run_id=runner.scope.run_id, step_id=step.id, tool_name=step.tool_name,
                    args=args,
                    call_key=f"{runner.scope.id_prefix}/{step.id}", mirror=own),
        result_type=ToolResult, start_to_close_timeout=opts.start_to_close,
        retry_policy=opts.retry_policy, summary=opts.summary)
    return StepOutcome(output=tool.output, attempts=tool.attempt,
                       tool_trace=[tool.trace.model_dump(mode="json")],
                       finished_at=tool.finished_at if tool.mirrored else None,
                       mirrored_as=tool.mirrored)


async def run_transform(writer: StepMirror, run_id: str, step: TransformStep,
                        mapped: dict[str, Any], record: StepRecord) -> StepOutcome:
    """A transform through the writer: a local activity that writes its own row."""
    result = await writer.transform(step, run_id, mapped, record)
    return StepOutcome(output=result.output, attempts=result.attempt,
                       started_at=result.started_at, finished_at=result.finished_at,
                       mirrored=result.mirrored)


async def run_kind(runner: Runner, writer: StepMirror, step: Step, mapped: dict[str, Any],
                   context: dict[str, Any], record: StepRecord,
                   own: StepSelfWrite | None = None) -> StepOutcome:
    """Run one step through the handler of its kind (every kind; mypy checks the match is
    exhaustive over the definition's step union); ``own``: the rows an llm or tool step's
    activity writes itself."""
    match step:
        case LlmStep():
            return await run_llm_step(step, runner.scope, mapped, context, own)
        case ToolStep():
            return await run_tool(runner, step, mapped, own)
        case TransformStep():
            return await run_transform(writer, runner.scope.run_id, step, mapped, record)
        case ConditionStep():
            return await control.run_condition(runner, step, mapped, context, record)
        case ParallelStep():
            return await parallel.run_parallel(runner, step, mapped, context, record)
        case MapStep():
            return await map_step.run_map(runner, step, mapped, context, record)
        case ApprovalStep():
            return await approval.run_approval(runner, step, mapped, context, record)
        case WorkflowStep():
            return await child.run_child(runner, step, mapped, context, record)
        case AgentStep():
            return await run_agent_step(runner, step, mapped, context, record)
        case _:
            assert_never(step)
