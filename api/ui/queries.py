"""Reads the pages need beyond the store's own: where reused steps came from, last runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from store.runs import Store
from store.tables import RunRow, StepRow, WorkflowRow


async def step_sources(engine: AsyncEngine, environment: str,
                       record_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """For each step record id, the run that produced it (reused steps link there)."""
    ids = list(set(record_ids))
    if not ids:
        return {}
    query = select(StepRow.id, StepRow.run_id).where(
        col(StepRow.id).in_(ids), col(StepRow.environment) == environment)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {row[0]: row[1] for row in rows}


async def last_runs(store: Store, environment: str,
                    workflows: Sequence[WorkflowRow]) -> dict[uuid.UUID, RunRow]:
    """The newest run of each workflow that has one."""
    found: dict[uuid.UUID, RunRow] = {}
    for workflow in workflows:
        runs = await store.list_runs(environment, workflow_id=workflow.id, limit=1)
        if runs:
            found[workflow.id] = runs[0]
    return found
