"""Worst-case cost of one LLM call, checked against the run's remaining budget before calling.

The run's ledger (``workflows/ledger.py``) reserves this worst case before the call, through the
``llm_worst_case`` local activity, and hands the reservation to the call as ``budgetUsd``.
The estimate is deliberately pessimistic: prompt tokens are taken as one per three characters
of everything sent (system, user and the schema instruction), and the answer as the full
``maxTokens`` (``ASSUMED_MAX_OUTPUT_TOKENS`` when the step gives none), all at the model's
uncached prices from genai-prices. A call is refused when what this activity already spent
plus that estimate would exceed ``LlmRequest.budget_usd``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempt_log import LOST
from activities.pricing import price
from activities.providers import registry
from schema.activities import LLM_WORST_CASE_ACTIVITY, AttemptEntry, CostEstimate, LlmRequest
from schema.errors import ErrorType

CHARS_PER_TOKEN = 3
ASSUMED_MAX_OUTPUT_TOKENS = 4096
PROMPT_OVERHEAD_TOKENS = 16


def estimated_prompt_tokens(request: LlmRequest) -> int:
    """An upper-end guess of the prompt's token count."""
    text = (request.system or "") + request.user
    if request.output_schema is not None:
        text += json.dumps(request.output_schema) + " " * 120
    return math.ceil(len(text) / CHARS_PER_TOKEN) + PROMPT_OVERHEAD_TOKENS


def worst_case_cost(provider: str, model: str, request: LlmRequest) -> float | None:
    """The most one call could cost, or None when the model has no known price."""
    tokens_out = request.max_tokens or ASSUMED_MAX_OUTPUT_TOKENS
    cost, _ = price(provider, model, estimated_prompt_tokens(request), tokens_out, 0)
    return cost


def spent_before(provider: str, model: str, request: LlmRequest,
                 log: Sequence[AttemptEntry]) -> float:
    """What earlier attempts of this call spent: their recorded cost, and the worst case for
    an attempt that was lost (a killed worker's call may have been billed)."""
    spent = 0.0
    for entry in log:
        if entry.cost_usd is not None:
            spent += entry.cost_usd
        elif entry.error_type == LOST:
            spent += worst_case_cost(provider, model, request) or 0.0
    return spent


@activity.defn(name=LLM_WORST_CASE_ACTIVITY)
async def llm_worst_case(request: LlmRequest) -> CostEstimate:
    """The most one call of ``request`` could cost: what the run's ledger reserves first."""
    provider, model = registry.resolve_model(request.model, request.provider or None)
    tokens_out = request.max_tokens or ASSUMED_MAX_OUTPUT_TOKENS
    basis = (f"~{estimated_prompt_tokens(request)} prompt tokens (1 per {CHARS_PER_TOKEN} "
             f"characters) + {tokens_out} output tokens at {provider}/{model}'s list prices")
    return CostEstimate(usd=worst_case_cost(provider, model, request) if provider else None,
                        basis=basis)


def check_budget(provider: str, model: str, request: LlmRequest, spent: float) -> str | None:
    """Raise BUDGET_EXCEEDED when the next call could cross the budget; warn if unpriced."""
    if request.budget_usd is None:
        return None
    estimate = worst_case_cost(provider, model, request)
    if estimate is None:
        return (f"no price known for {provider}/{model}: the run's maxCostUsd cannot be "
                "enforced for this call")
    if spent + estimate <= request.budget_usd:
        return None
    remaining = max(request.budget_usd - spent, 0.0)
    raise ApplicationError(
        f"budget exceeded: a call to {provider}/{model} could cost up to ${estimate:.6f} "
        f"(~{estimated_prompt_tokens(request)} prompt tokens + "
        f"{request.max_tokens or ASSUMED_MAX_OUTPUT_TOKENS} output tokens) but only "
        f"${remaining:.6f} of the run's maxCostUsd remains; the call was not made",
        {"estimateUsd": estimate, "remainingUsd": remaining, "provider": provider,
         "model": model},
        type=ErrorType.BUDGET_EXCEEDED, non_retryable=True,
    )
