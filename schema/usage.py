"""Bodies of `GET /api/usage`: spend from the mirror, grouped by model, workflow or environment."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schema.base import CamelModel

UsageGroupBy = Literal["model", "workflow", "environment"]


class ModelSpend(CamelModel):
    """What the model calls of a map step's items spent on one provider/model: items are not
    mirrored as rows, so their map step carries this (``mapItems.spendByModel``) for usage."""

    calls: int = 0
    unpriced_calls: int = 0
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0

    @classmethod
    def of_call(cls, cost: Any, tokens_in: Any, tokens_out: Any, cached: Any) -> ModelSpend:
        """One call; a cost that is not a number is an unpriced call, never a silent 0."""
        priced = isinstance(cost, int | float)
        return cls(calls=1, unpriced_calls=0 if priced else 1,
                   cost_usd=float(cost) if priced else 0.0, tokens_in=int(tokens_in or 0),
                   tokens_out=int(tokens_out or 0), cached_tokens=int(cached or 0))

    def add(self, other: ModelSpend) -> None:
        """Fold another tally of the same model into this one."""
        self.calls += other.calls
        self.unpriced_calls += other.unpriced_calls
        self.cost_usd += other.cost_usd
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cached_tokens += other.cached_tokens


class UsageLine(ModelSpend):
    """Spend of one group (or the totals): its model calls, and the runs they belong to."""

    key: str
    runs: int = 0


def step_spend(step: Any) -> Iterator[tuple[str, ModelSpend]]:
    """The model calls of one step (a mirror row or a step record: the same field names), by
    ``provider/model``: an llm step's model, or each of its ``modelOutputs``; a map step's
    items from its ``mapItems.spendByModel``. Reused steps spent nothing."""
    if step.status == "reused":
        return
    if step.type == "map":
        for key, spend in ((step.map_items or {}).get("spendByModel") or {}).items():
            yield key, ModelSpend.model_validate(spend)
        return
    if step.type != "llm":
        return
    if step.model_outputs:
        for out in step.model_outputs:
            if out.get("status") != "skipped":
                yield (f"{out.get('provider')}/{out.get('model')}",
                       ModelSpend.of_call(out.get("cost"), out.get("tokensIn"),
                                          out.get("tokensOut"), out.get("cachedTokens")))
        return
    if step.model is not None:  # None: failed before a model was chosen (mapping, template)
        key = f"{step.provider}/{step.model}" if step.provider else str(step.model)
        yield key, ModelSpend.of_call(step.cost, step.tokens_in, step.tokens_out,
                                      step.cached_tokens)


def spend_by_model(tallies: Iterable[Iterable[tuple[str, ModelSpend]]]) -> dict[str, ModelSpend]:
    """Tallies of (model, spend) pairs folded into one per model."""
    out: dict[str, ModelSpend] = {}
    for tally in tallies:
        for key, spend in tally:
            out.setdefault(key, ModelSpend()).add(spend)
    return out


class UsageReport(CamelModel):
    """Spend of the runs created in [since, until) in the key's environment."""

    environment: str
    since: datetime | None = None
    until: datetime | None = None
    group_by: UsageGroupBy
    totals: UsageLine
    groups: list[UsageLine] = Field(default_factory=list)


class UsageEnvelope(CamelModel):
    """`{"success": true, "usage": {...}}`."""

    success: bool = True
    usage: UsageReport
