"""One model turn of an agent step, deterministic: answered from the recorded answers when the
run says ``llmCache: use`` and an identical turn (same model, conversation so far, tools and
settings) was recorded, else the ``agent_turn`` activity under the run's budget: the turn first
reserves its worst case (``llm_worst_case``) and settles at what it was billed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from schema.activities import (
        AGENT_RECORDED_ACTIVITY,
        AGENT_TURN_ACTIVITY,
        LLM_WORST_CASE_ACTIVITY,
        AgentTurnRequest,
        AgentTurnResult,
        CostEstimate,
        LlmRequest,
        TurnLookup,
    )
    from schema.definition import DEFAULT_LLM_RETRY, AgentStep
    from schema.errors import ErrorType
    from schema.run import StepError

from workflows.ledger import BudgetRefused
from workflows.options import retry_policy
from workflows.scope import RunScope, StepFailed

_LOCAL_TIMEOUT = timedelta(seconds=10)


class TurnStopped(StepFailed):
    """The turn could not be made (budget) or failed: the agent step fails with ``error``."""


@dataclass
class Turn:
    """The model's answer to one turn; ``cached_from`` names the recorded turn it came from."""

    result: AgentTurnResult
    cached_from: dict[str, Any] | None = None


async def model_turn(scope: RunScope, step: AgentStep, request: AgentTurnRequest) -> Turn:
    """The turn's answer: recorded (``llmCache: use``), else the model's."""
    if scope.llm_cache == "use":
        lookup: TurnLookup = await workflow.execute_local_activity(
            AGENT_RECORDED_ACTIVITY, request, result_type=TurnLookup,
            start_to_close_timeout=_LOCAL_TIMEOUT,
            summary=f"{request.step_id}: turn {request.turn} record")
        if (found := lookup.turn) is not None:
            # No model call was made: nothing spent, no tokens, no attempt.
            result = found.result.model_copy(update={
                "cost": 0.0, "tokens_in": 0, "tokens_out": 0, "cached_tokens": 0,
                "latency_ms": 0.0, "attempt": 0, "warnings": [
                    f"turn {request.turn} answered from the recorded turn of run "
                    f"{found.run_id}, step {found.step_id} (llmCache: use); the model was "
                    "not called"]})
            return Turn(result, {"runId": found.run_id, "stepId": found.step_id,
                                 "recordedAt": found.recorded_at.isoformat()})
    return Turn(await _made(scope, step, request))


async def _made(scope: RunScope, step: AgentStep, request: AgentTurnRequest) -> AgentTurnResult:
    ledger = scope.ledger
    held = None
    if ledger is not None:
        worst = LlmRequest(
            run_id=request.run_id, step_id=request.step_id, provider=request.provider,
            model=request.model, system=request.system,
            user="\n".join(m.text + json.dumps([c.arguments for c in m.tool_calls])
                           for m in request.messages),
            max_tokens=request.max_tokens, repair_attempts=request.repair_attempts)
        estimate: CostEstimate = await workflow.execute_local_activity(
            LLM_WORST_CASE_ACTIVITY, worst, result_type=CostEstimate,
            start_to_close_timeout=_LOCAL_TIMEOUT,
            summary=f"{request.step_id}: turn {request.turn} worst case")
        if estimate.usd is not None:
            try:
                held = await ledger.reserve(estimate.usd)
            except BudgetRefused as refused:
                raise TurnStopped(StepError(
                    type=ErrorType.BUDGET_EXCEEDED, retryable=False, message=(
                        f"budget exceeded: turn {request.turn} of agent {step.id} could cost "
                        f"up to ${refused.wanted:.6f} ({estimate.basis}) but only "
                        f"${refused.available:.6f} of the run's maxCostUsd is left; the turn "
                        "was not made"))) from None
    result: AgentTurnResult | None = None
    try:
        result = await workflow.execute_activity(
            AGENT_TURN_ACTIVITY, request, result_type=AgentTurnResult,
            start_to_close_timeout=timedelta(seconds=step.timeout_seconds or 120),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=retry_policy(step.retry_config or DEFAULT_LLM_RETRY),
            summary=f"{step.id} · agent turn {request.turn} {request.provider}/{request.model}")
        return result
    except ActivityError as exc:
        if isinstance(exc.cause, CancelledError):
            raise
        cause = exc.cause
        raise TurnStopped(StepError(
            type=(cause.type if isinstance(cause, ApplicationError) and cause.type
                  else ErrorType.INTERNAL),
            message=cause.message if isinstance(cause, ApplicationError) else str(exc),
            retryable=False)) from None
    finally:
        if held is not None and ledger is not None:
            ledger.settle(held, held.amount if result is None else (result.cost or 0.0))
