"""The Postgres store shared by the API and the mirror activities. Every call is env-scoped."""

from __future__ import annotations

import dataclasses
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel, col

from schema.run import RunRecord, StepRecord, StepWork
from store.columns import utcnow
from store.sql import (
    Conflict,
    autocommit_sessions,
    from_record,
    insert_sql,
    raw_connection,
    select_sql,
)
from store.tables import RunRow, StepRow, WorkflowVersionRow
from store.upsert import RawPool, Upsert, json_argument, write
from store.workflows import WorkflowVersions

TERMINAL_STEP = ("completed", "failed", "cancelled", "reused", "skipped")
TERMINAL_RUN = ("completed", "failed", "cancelled")
# A stalled run's workflow task is being retried: the interpreter's writes may come from
# attempts Temporal then rejects (their local activities ran all the same), so only the
# reconciler moves the row on, from Temporal's own record (promptpilot/reconciler.py).
HELD_RUN = ("stalled",)
# Every mirror write that changes a row also NOTIFYs this channel in its own transaction, so
# live subscribers (the run events stream) hear of it exactly when it is committed.
RUN_EVENTS_CHANNEL = "promptpilot_run_events"
# A run's final row NOTIFYs this channel instead: requests waiting for runs to end (``?wait``)
# listen to it alone, not to every step transition and delta of every run.
RUN_ENDS_CHANNEL = "promptpilot_run_ends"


def run_channel(status: str) -> str:
    """The channel a run row's write in ``status`` NOTIFYs."""
    return RUN_ENDS_CHANNEL if status in TERMINAL_RUN else RUN_EVENTS_CHANNEL
# NOTIFYed (payload: the run id) when a start is queued, so idle dispatchers in other
# processes take it at once (store/run_starts.py).
RUN_STARTS_CHANNEL = "promptpilot_run_starts"

# The run's row, its queued start and the wake-up of idle dispatchers: one round trip.
_QUEUED_START = """
WITH run AS ({insert} RETURNING id, environment),
queued AS (
    INSERT INTO run_starts (run_id, environment, start_input, attempts, next_attempt_at,
                            created_at)
    SELECT id, environment, ${n}, 0, now(), now() FROM run RETURNING run_id)
SELECT pg_notify(${m}, run_id::text) FROM queued
"""


def step_record_id(run_id: str, step_id: str) -> uuid.UUID:
    """Stable id of a step record, so retried mirror writes hit the same row."""
    return uuid.uuid5(uuid.UUID(run_id), step_id)


class Store(WorkflowVersions):
    """Reads and writes the mirror tables: workflows and versions (inherited), runs, steps."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # For one-statement reads and the run insert, which need no transaction around them:
        # on an autocommit connection each costs one round trip, where a session's implicit
        # transaction costs three (BEGIN, statement, ROLLBACK/COMMIT) and the pool's
        # pre-ping three more (BEGIN, ping, ROLLBACK) instead of one.
        self._single = autocommit_sessions(engine)
        # The mirror's upserts (the worker's hot path) go through a plain asyncpg pool.
        self._raw = RawPool(engine)
        # Versions are immutable once written: cached by (workflow id, version number).
        # Callers treat a version row as read-only.
        self._versions: OrderedDict[tuple[uuid.UUID, int], WorkflowVersionRow] = OrderedDict()

    @property
    def raw(self) -> RawPool:
        """The plain asyncpg pool of the worker's hot-path writes (the mirror's)."""
        return self._raw

    # -- runs ----------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, idempotency_key: str | None = None,
                         request_hash: str | None = None,
                         overrides: dict[str, Any] | None = None,
                         start: str | None = None) -> RunRow:
        """Insert a run as `pending` before its workflow starts; Conflict on a reused key.

        With ``start`` (the interpreter's input as JSON text) the run's start is queued for the
        dispatcher in the same statement (store/run_starts.py), and NOTIFYed.
        """
        row = RunRow(id=uuid.UUID(record.run_id), environment=record.environment,
                     workflow_id=uuid.UUID(record.workflow_id),
                     workflow_version=record.workflow_version, status=record.status,
                     trigger=record.trigger, input_json=record.input,
                     source_run_id=uuid.UUID(record.source_run_id)
                     if record.source_run_id else None,
                     from_step_id=record.from_step_id, idempotency_key=idempotency_key,
                     trigger_id=uuid.UUID(record.trigger_id) if record.trigger_id else None,
                 request_hash=request_hash, overrides=overrides)
        table = SQLModel.metadata.tables[RunRow.__tablename__]
        keys = tuple(column.name for column in table.columns)
        arguments = [json_argument(table, key, getattr(row, key)) for key in keys]
        # One statement, atomic on its own: no transaction around it.
        statement = insert_sql(table, keys)
        if start is not None:
            statement = _QUEUED_START.format(insert=statement, n=len(arguments) + 1,
                                             m=len(arguments) + 2)
            arguments += [start, RUN_STARTS_CHANNEL]
        async with raw_connection(self.engine) as driver:
            try:
                await driver.execute(statement, *arguments)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict("a run with this idempotency key already exists") from exc
        return row

    async def delete_run(self, run_id: str) -> None:
        """Remove a run whose workflow never started, so nothing half-written stays."""
        async with self._sessions() as session:
            await session.execute(delete(RunRow).where(col(RunRow.id) == uuid.UUID(run_id)))
            await session.commit()

    async def upsert_run(self, record: RunRecord) -> None:
        """Idempotent write of a run's state from the interpreter."""
        await write(self._raw, [_run_upsert(record)])

    async def upsert_steps(self, records: Sequence[StepRecord],
                           run: RunRecord | None = None) -> None:
        """Idempotent writes of steps (after their run's row, when given), in order, on one
        connection."""
        head = [_run_upsert(run)] if run is not None else []
        await write(self._raw, [*head, *(_step_upsert(r) for r in records)])

    async def start_step(self, record: StepRecord) -> None:
        """An activity attempt's own "running" write of its step. It reopens a row completed
        by an earlier attempt (one that wrote its answer and was then lost, so Temporal runs
        the step again: no attempt starts after the one whose answer the interpreter took),
        never a failed or cancelled row, nor a later attempt's."""
        step = dataclasses.replace(_step_upsert(record), newer="attempts", reopens="completed")
        await write(self._raw, [step])

    async def finish_step(self, record: StepRecord) -> bool:
        """An activity's own write of the step it finished; whether it landed. It leaves
        alone a row already finished (the interpreter decided first) or taken by a later
        attempt (this one was given up on)."""
        step = dataclasses.replace(_step_upsert(record), held=TERMINAL_STEP, newer="attempts")
        return (await write(self._raw, [step]))[0]

    async def upsert_step(self, record: StepRecord) -> None:
        """Idempotent write of one step, keyed by (run id, step id)."""
        await self.upsert_steps([record])

    async def aclose(self) -> None:
        """Close the mirror writers' connections (the engine is its owner's to dispose)."""
        await self._raw.aclose()

    async def get_run(self, environment: str, run_id: uuid.UUID) -> RunRow | None:
        """A run of this environment."""
        async with self._single() as session:
            row = await session.get(RunRow, run_id)
            return row if row is not None and row.environment == environment else None

    async def get_run_with_steps(self, environment: str, run_id: uuid.UUID
                                 ) -> tuple[RunRow, list[StepRow]] | None:
        """A run of this environment and its steps in definition order, on one connection."""
        runs = SQLModel.metadata.tables[RunRow.__tablename__]
        steps = SQLModel.metadata.tables[StepRow.__tablename__]
        async with raw_connection(self.engine) as driver:
            record = await driver.fetchrow(select_sql(runs, "id = $1"), run_id)
            if record is None or record["environment"] != environment:
                return None
            step_records = await driver.fetch(
                select_sql(steps, "run_id = $1", "step_index"), run_id)
        return from_record(RunRow, record), [from_record(StepRow, r) for r in step_records]

    async def get_run_by_idempotency_key(self, environment: str, key: str) -> RunRow | None:
        """The run an idempotency key already started."""
        async with self._sessions() as session:
            result = await session.execute(
                select(RunRow).where(col(RunRow.environment) == environment,
                                     col(RunRow.idempotency_key) == key)
            )
            return result.scalar_one_or_none()

    async def get_steps(self, run_id: uuid.UUID) -> Sequence[StepRow]:
        """A run's steps in definition order."""
        async with self._single() as session:
            result = await session.execute(
                select(StepRow).where(col(StepRow.run_id) == run_id)
                .order_by(col(StepRow.step_index))
            )
            return list(result.scalars().all())

    async def list_runs(
        self, environment: str, *, workflow_id: uuid.UUID | None = None,
        status: str | None = None, trigger: str | None = None,
        not_trigger: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        before: tuple[datetime, uuid.UUID] | None = None, limit: int = 20,
    ) -> Sequence[RunRow]:
        """Runs newest first, filtered; `before` is the keyset cursor (created_at, id)."""
        query = select(RunRow).where(col(RunRow.environment) == environment)
        if workflow_id is not None:
            query = query.where(col(RunRow.workflow_id) == workflow_id)
        if status:
            query = query.where(col(RunRow.status) == status)
        if trigger:
            query = query.where(col(RunRow.trigger) == trigger)
        if not_trigger:
            query = query.where(col(RunRow.trigger) != not_trigger)
        if since:
            query = query.where(col(RunRow.created_at) >= since)
        if until:
            query = query.where(col(RunRow.created_at) < until)
        if before:
            query = query.where(
                func.row(col(RunRow.created_at), col(RunRow.id)) < func.row(*before)
            )
        query = query.order_by(col(RunRow.created_at).desc(), col(RunRow.id).desc()).limit(limit)
        async with self._sessions() as session:
            result = await session.execute(query)
            return list(result.scalars().all())

    async def count_rows(self) -> dict[str, int]:
        """Row counts of the run tables (used to prove that nothing was written)."""
        async with self._sessions() as session:
            runs = (await session.execute(select(func.count()).select_from(RunRow))).scalar_one()
            steps = (await session.execute(select(func.count()).select_from(StepRow))).scalar_one()
            return {"runs": int(runs), "steps": int(steps)}


def _step_upsert(record: StepRecord) -> Upsert:
    """A step record as its mirror row and the event its write notifies."""
    duration = None
    if record.started_at and record.finished_at:
        duration = (record.finished_at - record.started_at).total_seconds() * 1000
    values: dict[str, Any] = {
        **{name: getattr(record, name) for name in StepWork.model_fields},
        "environment": record.environment, "step_index": record.step_index,
        "name": record.name, "type": record.type, "status": record.status,
        "input_json": record.input, "output_json": record.output,
        "error": record.error.model_dump(mode="json") if record.error else None,
        "retry_count": max(record.attempts - 1, 0),
        "reused_from_record_id": uuid.UUID(record.reused_from_record_id)
        if record.reused_from_record_id else None,
        "parent_step_id": record.parent_step_id, "map_items": record.map_items,
        "started_at": record.started_at, "finished_at": record.finished_at,
        "duration_ms": duration, "updated_at": utcnow(),
    }
    row = {"id": step_record_id(record.run_id, record.step_id),
           "run_id": uuid.UUID(record.run_id), "step_id": record.step_id, **values}
    event = {"kind": "step", "runId": record.run_id, "stepId": record.step_id,
             "stepIndex": record.step_index, "status": record.status,
             "attempts": record.attempts, "tokensIn": record.tokens_in,
             "tokensOut": record.tokens_out, "cost": record.cost,
             # NOTIFY payloads must stay under 8000 bytes: long messages are cut.
             "error": record.error.message[:500] if record.error else None}
    return Upsert(SQLModel.metadata.tables[StepRow.__tablename__], row, ("run_id", "step_id"),
                  TERMINAL_STEP, RUN_EVENTS_CHANNEL, event)


def _run_upsert(record: RunRecord) -> Upsert:
    """A run record as its mirror row and the event its write notifies."""
    values: dict[str, Any] = {
        "environment": record.environment, "workflow_id": uuid.UUID(record.workflow_id),
        "workflow_version": record.workflow_version, "status": record.status,
        "trigger": record.trigger, "input_json": record.input,
        "trigger_id": uuid.UUID(record.trigger_id) if record.trigger_id else None,
        "output_json": record.output,
        "error": record.error.model_dump(mode="json") if record.error else None,
        "actual_cost": record.actual_cost, "tokens_in": record.tokens_in,
        "tokens_out": record.tokens_out,
        "source_run_id": uuid.UUID(record.source_run_id) if record.source_run_id else None,
        "from_step_id": record.from_step_id, "started_at": record.started_at,
        "finished_at": record.finished_at,
        "parent_run_id": uuid.UUID(record.parent_run_id) if record.parent_run_id else None,
        "parent_step_id": record.parent_step_id,
    }
    if record.trace_id:  # only a traced write sets it; others leave it as it is
        values["trace_id"] = record.trace_id
    # A late or retried "running" write never undoes a finished run (the upsert's guard).
    row = {"id": uuid.UUID(record.run_id), "created_at": utcnow(), **values}
    event = {"kind": "run", "runId": record.run_id, "status": record.status,
             "actualCost": record.actual_cost}
    return Upsert(SQLModel.metadata.tables[RunRow.__tablename__], row, ("id",),
                  TERMINAL_RUN, run_channel(record.status), event, HELD_RUN)
