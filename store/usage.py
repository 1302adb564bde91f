"""Spend from the mirror: step costs and tokens of runs in a time range, grouped.

Counts every step that spent (failed steps included: a call that was billed counts), by the
run's creation time, so the totals equal the sum of those runs' ``actualCost``. A multi-model
step is split by its ``modelOutputs`` when grouping by model. Map items are not rows: their
calls are counted from their map step's ``mapItems.spendByModel``; child runs are runs of their
own and count there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from schema.usage import ModelSpend, UsageGroupBy, UsageLine, UsageReport, step_spend
from store.tables import RunRow, StepRow, WorkflowRow


class _Line:
    def __init__(self, key: str) -> None:
        self.line = UsageLine(key=key)
        self.run_ids: set[str] = set()

    def add(self, run_id: str, spend: ModelSpend) -> None:
        self.line.add(spend)
        self.run_ids.add(run_id)

    def done(self) -> UsageLine:
        self.line.runs = len(self.run_ids)
        self.line.cost_usd = round(self.line.cost_usd, 10)
        return self.line


async def usage_report(engine: AsyncEngine, environment: str, group_by: UsageGroupBy,
                       since: datetime | None = None,
                       until: datetime | None = None) -> UsageReport:
    """Spend of one environment's runs created in [since, until)."""
    query = (
        select(col(StepRow.run_id), col(StepRow.model), col(StepRow.provider),
               col(StepRow.cost), col(StepRow.tokens_in), col(StepRow.tokens_out),
               col(StepRow.cached_tokens), col(StepRow.model_outputs), col(StepRow.type),
               col(StepRow.map_items), col(StepRow.status),
               col(WorkflowRow.slug), col(RunRow.environment))
        .join(RunRow, col(RunRow.id) == col(StepRow.run_id))
        .join(WorkflowRow, col(WorkflowRow.id) == col(RunRow.workflow_id))
        .where(col(RunRow.environment) == environment, col(StepRow.type).in_(("llm", "map")),
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
        run_id = str(row.run_id)
        for model, spend in step_spend(row):
            key = {"model": model, "workflow": row.slug, "environment": row.environment}[group_by]
            groups.setdefault(key, _Line(key)).add(run_id, spend)
            totals.add(run_id, spend)
    ordered = sorted((g.done() for g in groups.values()), key=lambda g: (-g.cost_usd, g.key))
    return UsageReport(environment=environment, since=since, until=until, group_by=group_by,
                       totals=totals.done(), groups=ordered)
