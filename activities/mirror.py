"""The mirror writer: idempotent upserts of runs and steps, run as local activities."""

from __future__ import annotations

from temporalio import activity

from activities import metrics
from schema.run import RunRecord, StepRecord, StepRecords
from store.runs import Store


class MirrorActivities:
    """Writes the interpreter's run and step records into Postgres."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="mirror_run")
    async def mirror_run(self, record: RunRecord) -> None:
        """Upsert the run row."""
        await self._store.upsert_run(record)

    @activity.defn(name="mirror_step")
    async def mirror_step(self, record: StepRecord) -> None:
        """Upsert one step row (keyed by run id and step id: retries never duplicate)."""
        await self._store.upsert_step(record)
        metrics.steps_written([record])

    @activity.defn(name="mirror_steps")
    async def mirror_steps(self, batch: StepRecords) -> None:
        """Upsert several step rows (after the run's row, when given), in order, on one
        connection (each idempotent)."""
        await self._store.upsert_steps(batch.records, run=batch.run)
        metrics.steps_written(batch.records)
