"""Worst-case cost of one LLM call, checked against the run's remaining budget before calling.

The estimate is deliberately pessimistic: prompt tokens are taken as one per three characters
of everything sent (system, user and the schema instruction), and the answer as the full
``maxTokens`` (``ASSUMED_MAX_OUTPUT_TOKENS`` when the step gives none), all at the model's
uncached prices from genai-prices. A call is refused when what this activity already spent
plus that estimate would exceed ``LlmRequest.budget_usd``.
"""

from __future__ import annotations

import json
import math

from temporalio.exceptions import ApplicationError

from activities.pricing import price
from schema.activities import LlmRequest
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
