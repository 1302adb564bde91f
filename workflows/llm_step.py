"""An llm step: one model, or several in parallel or fallback mode. Deterministic.

Every model is its own call (``workflows/llm_call.py``: the ``llm_call`` activity with the step's
retry policy, a recorded answer, or a budget refusal). Which answer
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
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.activities import LlmRequest, StepSelfWrite
    from schema.definition import DEFAULT_LLM_RETRY, LlmStep
    from schema.errors import ErrorType
    from schema.model_ref import resolve_model
    from schema.run import RunLimits, StepError

from definition.templates import TemplateError, render
from workflows.llm_call import ModelCall, answer
from workflows.outcome import StepOutcome
from workflows.scope import RunScope


class LlmStepFailed(Exception):
    """Every model of an llm step failed; ``partial`` holds what was spent and logged."""

    def __init__(self, error: StepError, partial: StepOutcome) -> None:
        super().__init__(error.message)
        self.error = error
        self.partial = partial


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


async def run_llm_step(step: LlmStep, scope: RunScope, mapped: dict[str, Any],
                       context: dict[str, Any], own: StepSelfWrite | None = None
                       ) -> StepOutcome:
    """Call the step's model(s); raise ``LlmStepFailed`` when no model answered. With
    ``own`` (one model), the call's activity writes the step's rows."""
    ledger, recorded = scope.ledger, scope.llm_cache == "use"
    prompt_ref = {"id": step.prompt_id, "version": step.prompt_version} \
        if step.prompt_id is not None else None
    if own is not None:
        own.prompt_ref = prompt_ref
    requests = [r.model_copy(update={"environment": scope.environment,
                                     "workflow_slug": scope.workflow_slug, "mirror": own})
                for r in render_requests(step, scope.run_id, mapped, context, scope.limits)]
    max_attempts = (step.retry_config or DEFAULT_LLM_RETRY).max_attempts
    calls: list[ModelCall] = []
    if step.models is not None and step.mode == "parallel":
        calls = list(await asyncio.gather(
            *(answer(step, request, ledger, max_attempts, recorded)
              for request in requests)))
    else:
        for request in requests:
            if any(c.status == "completed" for c in calls):
                calls.append(ModelCall(request=request))
                continue
            calls.append(await answer(step, request, ledger, max_attempts, recorded))
    rendered: dict[str, Any] = {"system": requests[0].system, "user": requests[0].user}
    if prompt_ref is not None:
        # Which stored prompt version the run used (resolved into the snapshot at start).
        rendered["promptRef"] = prompt_ref
    outcome = _combine(step, calls, rendered)
    answered = calls[0].result
    if own is not None and answered is not None and answered.mirrored is not None:
        outcome.finished_at, outcome.mirrored_as = answered.finished_at, answered.mirrored
    return outcome


def _combine(step: LlmStep, calls: list[ModelCall], rendered: dict[str, Any]) -> StepOutcome:
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


def _model_output(call: ModelCall) -> dict[str, Any]:
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
