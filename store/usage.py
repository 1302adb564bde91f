"""Spend from the mirror: step costs and tokens of runs in a time range, grouped.

Counts every step that spent (failed steps included: a call that was billed counts), by the
run's creation time, so the totals equal the sum of those runs' ``actualCost``. A multi-model
step is split by its ``modelOutputs`` when grouping by model.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from schema.usage import UsageGroupBy, UsageLine, UsageReport
from store.tables import RunRow, StepRow, WorkflowRow


class _Line:
    def __init__(self, key: str) -> None:
        self.line = UsageLine(key=key)
        self.run_ids: set[str] = set()

    def add(self, run_id: str, cost: Any, tokens_in: int, tokens_out: int, cached: int) -> None:
        line = self.line
        line.calls += 1
        if isinstance(cost, int | float):
            line.cost_usd += float(cost)
        else:
            line.unpriced_calls += 1
        line.tokens_in += tokens_in
        line.tokens_out += tokens_out
        line.cached_tokens += cached
        self.run_ids.add(run_id)

    def done(self) -> UsageLine:
        self.line.runs = len(self.run_ids)
        self.line.cost_usd = round(self.line.cost_usd, 10)
        return self.line


def _parts(row: Any) -> Iterable[tuple[str, Any, int, int, int]]:
    """(model key, cost, tokens in, out, cached) per model a step called."""
    outputs = row.model_outputs
    if outputs:
        for out in outputs:
            if out.get("status") != "skipped":
                yield (f"{out.get('provider')}/{out.get('model')}", out.get("cost"),
                       int(out.get("tokensIn") or 0), int(out.get("tokensOut") or 0),
                       int(out.get("cachedTokens") or 0))
        return
    yield (f"{row.provider}/{row.model}" if row.provider else str(row.model), row.cost,
           row.tokens_in, row.tokens_out, row.cached_tokens)


async def usage_report(engine: AsyncEngine, environment: str, group_by: UsageGroupBy,
                       since: datetime | None = None,
                       until: datetime | None = None) -> UsageReport:
    """Spend of one environment's runs created in [since, until)."""
    query = (
        select(col(StepRow.run_id), col(StepRow.model), col(StepRow.provider),
               col(StepRow.cost), col(StepRow.tokens_in), col(StepRow.tokens_out),
               col(StepRow.cached_tokens), col(StepRow.model_outputs),
               col(WorkflowRow.slug), col(RunRow.environment))
        .join(RunRow, col(RunRow.id) == col(StepRow.run_id))
        .join(WorkflowRow, col(WorkflowRow.id) == col(RunRow.workflow_id))
        .where(col(RunRow.environment) == environment, col(StepRow.type) == "llm",
               col(StepRow.status) != "reused")
    )
    if since is not None:
        query = query.where(col(RunRow.created_at) >= since)
    if until is not None:
        query = query.where(col(RunRow.created_at) < until)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    totals, groups = _Line("total"), dict[str, _Line]()
    for row in rows:
        if row.model is None and not row.model_outputs:
            continue  # failed before any model was chosen (mapping or template error)
        run_id = str(row.run_id)
        for model, cost, tokens_in, tokens_out, cached in _parts(row):
            key = {"model": model, "workflow": row.slug, "environment": row.environment}[group_by]
            groups.setdefault(key, _Line(key)).add(run_id, cost, tokens_in, tokens_out, cached)
            totals.add(run_id, cost, tokens_in, tokens_out, cached)
    ordered = sorted((g.done() for g in groups.values()), key=lambda g: (-g.cost_usd, g.key))
    return UsageReport(environment=environment, since=since, until=until, group_by=group_by,
                       totals=totals.done(), groups=ordered)
