"""An llm step: one model, or several in parallel or fallback mode (seed 003). Deterministic.

Every model is its own ``llm_call`` activity with the step's retry policy. Which answer
becomes the step's ``output``:

- single ``model``: its answer;
- ``mode: parallel``: all models are called at once; the first model *in list order* that
  succeeded (not the fastest, so the choice is stable across runs);
- ``mode: fallback``: models are tried in order, the next only when the previous failed
  (after its own retries and repairs); the one that succeeded.

Failed models add a warning; the step fails only when every model failed. Under a run
budget every call first reserves its worst case on the run's ledger (``workflows/ledger.py``)
and passes the reservation as ``budgetUsd``; it settles at what it was billed.
"""

from __future__ import annotations

import asyncio
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
    from schema.definition import DEFAULT_LLM_RETRY, LlmStep
    from schema.errors import ErrorType
    from schema.model_ref import resolve_model
    from schema.run import RunLimits, StepError

from definition.templates import TemplateError, render
from workflows.ledger import BudgetLedger, BudgetRefused
from workflows.options import step_options
from workflows.outcome import StepOutcome
from workflows.scope import RunScope

_INTERNAL_DETAILS = frozenset({"attempt", "attemptLog", "usage", "repairs"})
_UNRECORDED = frozenset({"attempt_lost", "step_timeout"})
_ESTIMATE_TIMEOUT = timedelta(seconds=10)


class LlmStepFailed(Exception):
    """Every model of an llm step failed; ``partial`` holds what was spent and logged."""

    def __init__(self, error: StepError, partial: StepOutcome) -> None:
        super().__init__(error.message)
        self.error = error
        self.partial = partial


@dataclass
class _ModelCall:
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


def _render(field_name: str, source: str, mapped: dict[str, Any],
            context: dict[str, Any], limits: RunLimits) -> str:
    try:
        return render(source, mapped, context, limits)
    except TemplateError as exc:
        # Names the field and the missing variable, e.g. "promptUser: undefined variable: ..."
        raise exc.renamed(field_name) from None


def render_requests(step: LlmStep, run_id: str, mapped: dict[str, Any],
                    context: dict[str, Any], limits: RunLimits) -> list[LlmRequest]:
    """One rendered request per model; the rendered text is what the Temporal UI shows."""
    system = _render("promptSystem", step.prompt_system, mapped, context, limits) \
        if step.prompt_system else None
    user = _render("promptUser", step.prompt_user or "", mapped, context, limits)
    requests = []
    for target in step.targets():
        provider, model = resolve_model(target.model, target.provider)
        requests.append(LlmRequest(
            run_id=run_id, step_id=step.id, provider=provider, model=model, system=system,
            user=user, output_schema=step.output_schema, temperature=target.temperature,
            max_tokens=target.max_tokens, repair_attempts=step.repair_attempts))
    return requests


def _failure(exc: ActivityError, request: LlmRequest, max_attempts: int) -> _ModelCall:
    cause = exc.cause
    call = _ModelCall(request=request, status="failed")
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


async def _answer(step: LlmStep, request: LlmRequest, ledger: BudgetLedger | None,
                  max_attempts: int, recorded: bool) -> _ModelCall:
    """The recorded answer of an identical call (``llmCache: use``), else the model's."""
    if recorded:
        lookup: RecordLookup = await workflow.execute_local_activity(
            LLM_RECORDED_ACTIVITY, request, result_type=RecordLookup,
            start_to_close_timeout=_ESTIMATE_TIMEOUT, summary=f"{request.step_id}: record")
        if lookup.call is not None:
            return _from_record(request, lookup.call)
    return await _call(step, request, ledger, max_attempts)


def _from_record(request: LlmRequest, call: RecordedCall) -> _ModelCall:
    source = {"runId": call.run_id, "stepId": call.step_id,
              "recordedAt": call.recorded_at.isoformat()}
    # No model call was made: nothing spent, no tokens, no attempt.
    result = call.result.model_copy(update={
        "cost": 0.0, "tokens_in": 0, "tokens_out": 0, "cached_tokens": 0, "latency_ms": 0.0,
        "attempt": 0, "attempt_log": [], "repairs": [],
        "warnings": [f"answered from the recorded call of run {call.run_id}, step "
                     f"{call.step_id} (llmCache: use); the model was not called"]})
    return _ModelCall(request=request, status="completed", result=result, attempts=0,
                      cached_from=source)


async def _call(step: LlmStep, request: LlmRequest, ledger: BudgetLedger | None,
                max_attempts: int) -> _ModelCall:
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
    call: _ModelCall | None = None
    try:
        call = await _execute(step, request, held.amount, max_attempts)
        return call
    finally:
        # A cancelled or lost call may have been billed: it settles at what it held.
        ledger.settle(held, held.amount if call is None else call.spent(held.amount))


def _refused(request: LlmRequest, estimate: CostEstimate, refused: BudgetRefused) -> _ModelCall:
    label = f"{request.provider}/{request.model}"
    error = StepError(
        type=ErrorType.BUDGET_EXCEEDED, retryable=False,
        message=(f"budget exceeded: a call to {label} could cost up to ${refused.wanted:.6f} "
                 f"({estimate.basis}) but only ${refused.available:.6f} of the run's "
                 "maxCostUsd is left once the calls in flight settled; the call was not made"),
        details={"estimateUsd": refused.wanted, "remainingUsd": refused.available,
                 "provider": request.provider, "model": request.model})
    return _ModelCall(request=request, status="failed", error=error)


async def _execute(step: LlmStep, request: LlmRequest, budget: float | None,
                   max_attempts: int) -> _ModelCall:
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
    return _ModelCall(
        request=request, status="completed", result=result, attempts=result.attempt,
        attempt_log=[e.model_dump(mode="json") for e in result.attempt_log],
        repairs=[r.model_dump(mode="json") for r in result.repairs])


async def run_llm_step(step: LlmStep, scope: RunScope, mapped: dict[str, Any],
                       context: dict[str, Any]) -> StepOutcome:
    """Call the step's model(s); raise ``LlmStepFailed`` when no model answered."""
    ledger, recorded = scope.ledger, scope.llm_cache == "use"
    requests = [r.model_copy(update={"environment": scope.environment,
                                     "workflow_slug": scope.workflow_slug})
                for r in render_requests(step, scope.run_id, mapped, context, scope.limits)]
    max_attempts = (step.retry_config or DEFAULT_LLM_RETRY).max_attempts
    calls: list[_ModelCall] = []
    if step.models is not None and step.mode == "parallel":
        calls = list(await asyncio.gather(
            *(_answer(step, request, ledger, max_attempts, recorded)
              for request in requests)))
    else:
        for request in requests:
            if any(c.status == "completed" for c in calls):
                calls.append(_ModelCall(request=request))
                continue
            calls.append(await _answer(step, request, ledger, max_attempts, recorded))
    rendered: dict[str, Any] = {"system": requests[0].system, "user": requests[0].user}
    if step.prompt_id is not None:
        # Which stored prompt version the run used (resolved into the snapshot at start).
        rendered["promptRef"] = {"id": step.prompt_id, "version": step.prompt_version}
    return _combine(step, calls, rendered)


def _combine(step: LlmStep, calls: list[_ModelCall], rendered: dict[str, Any]) -> StepOutcome:
    tried = [c for c in calls if c.status != "skipped"]
    chosen = next((c for c in calls if c.result is not None), None)
    costs = [c.cost for c in tried]
    outcome = StepOutcome(
        output=chosen.result.output if chosen and chosen.result else None,
        attempts=sum(c.attempts for c in tried),
        tokens_in=sum(c.tokens("tokens_in") for c in tried),
        tokens_out=sum(c.tokens("tokens_out") for c in tried),
        cached_tokens=sum(c.tokens("cached_tokens") for c in tried),
        cost=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        model=(chosen or calls[0]).request.model, provider=(chosen or calls[0]).request.provider,
        rendered=rendered, cached_from=chosen.cached_from if chosen else None,
        attempt_log=[entry for c in tried for entry in c.attempt_log] or None,
        repairs=[{**r, "model": c.label} for c in tried for r in c.repairs] or None,
    )
    if step.models is None:
        outcome.warnings = list(calls[0].result.warnings) if calls[0].result else []
    else:
        outcome.model_outputs = [_model_output(c) for c in calls]
        outcome.aggregate_tokens = {"tokensIn": outcome.tokens_in,
                                    "tokensOut": outcome.tokens_out,
                                    "cachedTokens": outcome.cached_tokens, "cost": outcome.cost}
        for c in tried:
            if c.error is not None:
                then = f"; output taken from {chosen.label}" if chosen else ""
                outcome.warnings.append(f"{c.label} failed ({c.error.type}): "
                                        f"{c.error.message}{then}")
            elif c.result is not None:
                outcome.warnings += [f"{c.label}: {w}" for w in c.result.warnings]
    if chosen is None:
        last = tried[-1].error or StepError(type=ErrorType.INTERNAL, message="no model answered")
        if len(tried) > 1:
            listed = "; ".join(f"{c.label}: {c.error.message}" for c in tried if c.error)
            last = last.model_copy(update={"message": f"all {len(tried)} models failed: {listed}"})
        raise LlmStepFailed(last, outcome)
    return outcome


def _model_output(call: _ModelCall) -> dict[str, Any]:
    result = call.result
    return {
        "provider": call.request.provider, "model": call.request.model, "status": call.status,
        "content": result.output if result else None,
        "tokensIn": call.tokens("tokens_in"), "tokensOut": call.tokens("tokens_out"),
        "cachedTokens": call.tokens("cached_tokens"),
        "cost": call.cost if call.status != "skipped" else None,
        "latencyMs": result.latency_ms if result else call.usage.get("latencyMs"),
        "attempts": call.attempts, "retries": max(call.attempts - 1, 0),
        "repairs": len(call.repairs), "warnings": list(result.warnings) if result else [],
        "error": call.error.model_dump(mode="json") if call.error else None,
    }
