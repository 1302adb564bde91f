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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempt_log import LOST
from activities.pricing import price
from activities.providers import registry
from promptpilot.llm_settings import BudgetSettings
from schema.activities import LLM_WORST_CASE_ACTIVITY, AttemptEntry, CostEstimate, LlmRequest
from schema.errors import ErrorType
from store.daily_spend import DailyLimit, DailyRefused, DailySpend

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


class DailyBudgets:
    """The daily spend limits of a call's environment and workflow, held in Postgres across
    every run and worker: each call holds its worst case first and settles at its cost."""

    def __init__(self, spend: DailySpend | None, settings: BudgetSettings) -> None:
        self.spend, self.settings = spend, settings

    def limits(self, request: LlmRequest) -> list[DailyLimit]:
        """The daily limits that apply to ``request``."""
        settings, found = self.settings, list[DailyLimit]()
        if request.environment is None:
            return found
        if settings.environment_daily_usd is not None:
            found.append(DailyLimit(f"env:{request.environment}", settings.environment_daily_usd))
        if request.workflow_slug is not None:
            limit = settings.workflow_daily_usd.get(request.workflow_slug,
                                                    settings.default_workflow_daily_usd)
            if limit is not None:
                found.append(DailyLimit(
                    f"workflow:{request.environment}/{request.workflow_slug}", limit))
        return found

    @asynccontextmanager
    async def held(self, provider: str, model: str, request: LlmRequest
                   ) -> AsyncIterator[list[float | None]]:
        """Hold the call's worst case for today; the body puts the call's cost in the list
        it is given (left empty, the call counts at its worst case: it may have been billed)."""
        limits = self.limits(request) if self.spend is not None else []
        worst = worst_case_cost(provider, model, request) if limits else None
        cost: list[float | None] = []
        if self.spend is None or worst is None:
            yield cost
            return
        try:
            hold = await self.spend.hold(limits, worst)
        except DailyRefused as refused:
            raise ApplicationError(
                f"budget exceeded: the daily limit of {refused.limit.scope} is "
                f"${refused.limit.limit_usd:.4f}; ${refused.spent:.6f} is spent today and "
                f"${refused.held:.6f} held by calls in flight, and a call to {provider}/{model} "
                f"could cost up to ${worst:.6f}; the call was not made",
                {"scope": refused.limit.scope, "dailyLimitUsd": refused.limit.limit_usd,
                 "spentTodayUsd": refused.spent, "estimateUsd": worst},
                type=ErrorType.BUDGET_EXCEEDED, non_retryable=True) from None
        try:
            yield cost
        finally:
            spent = cost[0] if cost and cost[0] is not None else worst
            await self.spend.settle(hold, spent)
