"""One model call of an llm step, deterministic: answered from the recorded answers when the
run says ``llmCache: use``, else reserved on the run's budget ledger (its worst case priced by
the ``llm_worst_case`` local activity), made as the ``llm_call`` activity, and settled at what
every attempt was billed; a failure read back into the step's terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from schema.activities import (
        LLM_RECORDED_ACTIVITY,
        LLM_WORST_CASE_ACTIVITY,
        CostEstimate,
        LlmRequest,
        LlmResult,
        RecordedCall,
        RecordLookup,
    )
    from schema.definition import LlmStep
    from schema.errors import ErrorType
    from schema.run import StepError

from workflows.ledger import BudgetLedger, BudgetRefused
from workflows.options import step_options

_INTERNAL_DETAILS = frozenset({"attempt", "attemptLog", "usage", "repairs"})
_UNRECORDED = frozenset({"attempt_lost", "step_timeout"})
_ESTIMATE_TIMEOUT = timedelta(seconds=10)



@dataclass
class ModelCall:
    request: LlmRequest
    status: Literal["completed", "failed", "skipped"] = "skipped"
    result: LlmResult | None = None
    error: StepError | None = None
    attempts: int = 0
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    cached_from: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.request.provider}/{self.request.model}"

    @property
    def cost(self) -> float | None:
        if self.result is not None:
            return self.result.cost
        value = self.usage.get("cost", 0.0)
        return float(value) if isinstance(value, int | float) else None

    def spent(self, held: float) -> float:
        """What this call was billed, every attempt included; an attempt that left no
        record (lost, timed out) counts as all it ``held``."""
        failed = [e for e in self.attempt_log if e.get("status") == "failed"]
        if any(e.get("costUsd") is None and e.get("errorType") in _UNRECORDED for e in failed):
            return held
        total = sum(float(e.get("costUsd") or 0.0) for e in failed)
        if self.result is not None:
            total += self.result.cost or 0.0
        elif not failed and self.status == "failed":
            return held  # failed without a log (e.g. a timeout's lost details)
        return total

    def tokens(self, name: str) -> int:
        if self.result is not None:
            return int(getattr(self.result, name))
        camel = {"tokens_in": "tokensIn", "tokens_out": "tokensOut",
                 "cached_tokens": "cachedTokens"}[name]
        return int(self.usage.get(camel) or 0)


def _failure(exc: ActivityError, request: LlmRequest, max_attempts: int) -> ModelCall:
    cause = exc.cause
    call = ModelCall(request=request, status="failed")
    details: dict[str, Any] = {}
    if isinstance(cause, ApplicationError):
        if cause.details and isinstance(cause.details[0], dict):
            details = cause.details[0]
        shown = {k: v for k, v in details.items() if k not in _INTERNAL_DETAILS}
        call.error = StepError(type=cause.type or ErrorType.INTERNAL, message=cause.message,
                               retryable=not cause.non_retryable, details=shown or None)
    elif isinstance(cause, TimeoutError):
        call.error = StepError(type="step_timeout", message=f"step timed out ({cause.type})")
        beats = cause.last_heartbeat_details
        prior = beats[0] if beats and isinstance(beats[0], list) else []
        details = {"attemptLog": [*prior, {
            "number": len(prior) + 1, "status": "failed", "model": call.label,
            "errorType": "step_timeout", "message": call.error.message}]}
    else:
        call.error = StepError(type=ErrorType.INTERNAL, message=str(cause or exc))
    call.attempt_log = list(details.get("attemptLog") or [])
    call.repairs = list(details.get("repairs") or [])
    call.usage = dict(details.get("usage") or {})
    attempt = details.get("attempt")
    if isinstance(attempt, int):
        call.attempts = attempt
    elif exc.retry_state is not None and exc.retry_state.name == "MAXIMUM_ATTEMPTS_REACHED":
        call.attempts = max_attempts
    else:
        call.attempts = max(len(call.attempt_log), 1)
    return call


async def answer(step: LlmStep, request: LlmRequest, ledger: BudgetLedger | None,
                  max_attempts: int, recorded: bool) -> ModelCall:
    """The recorded answer of an identical call (``llmCache: use``), else the model's."""
    if recorded:
        lookup: RecordLookup = await workflow.execute_local_activity(
            LLM_RECORDED_ACTIVITY, request, result_type=RecordLookup,
            start_to_close_timeout=_ESTIMATE_TIMEOUT, summary=f"{request.step_id}: record")
        if lookup.call is not None:
            return _from_record(request, lookup.call)
    return await _call(step, request, ledger, max_attempts)


def _from_record(request: LlmRequest, call: RecordedCall) -> ModelCall:
    source = {"runId": call.run_id, "stepId": call.step_id,
              "recordedAt": call.recorded_at.isoformat()}
    # No model call was made: nothing spent, no tokens, no attempt.
    result = call.result.model_copy(update={
        "cost": 0.0, "tokens_in": 0, "tokens_out": 0, "cached_tokens": 0, "latency_ms": 0.0,
        "attempt": 0, "attempt_log": [], "repairs": [],
        "warnings": [f"answered from the recorded call of run {call.run_id}, step "
                     f"{call.step_id} (llmCache: use); the model was not called"]})
    return ModelCall(request=request, status="completed", result=result, attempts=0,
                      cached_from=source)


async def _call(step: LlmStep, request: LlmRequest, ledger: BudgetLedger | None,
                max_attempts: int) -> ModelCall:
    if ledger is None:
        return await _execute(step, request, None, max_attempts)
    estimate: CostEstimate = await workflow.execute_local_activity(
        LLM_WORST_CASE_ACTIVITY, request, result_type=CostEstimate,
        start_to_close_timeout=_ESTIMATE_TIMEOUT, summary=f"{request.step_id}: worst case")
    if estimate.usd is None:
        # Unpriced: nothing to reserve; the call warns that the budget cannot be enforced.
        return await _execute(step, request, max(ledger.available(), 0.0), max_attempts)
    try:
        # Room for the repairs too when it fits; at least the first call's worst case.
        held = await ledger.reserve(
            estimate.usd, up_to=estimate.usd * (1 + request.repair_attempts))
    except BudgetRefused as refused:
        return _refused(request, estimate, refused)
    call: ModelCall | None = None
    try:
        call = await _execute(step, request, held.amount, max_attempts)
        return call
    finally:
        # A cancelled or lost call may have been billed: it settles at what it held.
        ledger.settle(held, held.amount if call is None else call.spent(held.amount))


def _refused(request: LlmRequest, estimate: CostEstimate, refused: BudgetRefused) -> ModelCall:
    label = f"{request.provider}/{request.model}"
    error = StepError(
        type=ErrorType.BUDGET_EXCEEDED, retryable=False,
        message=(f"budget exceeded: a call to {label} could cost up to ${refused.wanted:.6f} "
                 f"({estimate.basis}) but only ${refused.available:.6f} of the run's "
                 "maxCostUsd is left once the calls in flight settled; the call was not made"),
        details={"estimateUsd": refused.wanted, "remainingUsd": refused.available,
                 "provider": request.provider, "model": request.model})
    return ModelCall(request=request, status="failed", error=error)


async def _execute(step: LlmStep, request: LlmRequest, budget: float | None,
                   max_attempts: int) -> ModelCall:
    opts = step_options(step, request.provider, request.model)
    try:
        result: LlmResult = await workflow.execute_activity(
            opts.activity, request.model_copy(update={"budget_usd": budget}),
            result_type=LlmResult, start_to_close_timeout=opts.start_to_close,
            heartbeat_timeout=opts.heartbeat, retry_policy=opts.retry_policy,
            summary=opts.summary,
        )
    except ActivityError as exc:
        if isinstance(exc.cause, CancelledError):
            raise  # the run was cancelled: not a model failure, and no fallback may start
        return _failure(exc, request, max_attempts)
    return ModelCall(
        request=request, status="completed", result=result, attempts=result.attempt,
        attempt_log=[e.model_dump(mode="json") for e in result.attempt_log],
        repairs=[r.model_dump(mode="json") for r in result.repairs])
