"""The reconciler's reads and writes of the mirror: compare-and-set, so they race safely.

Every write names the status it saw: a run row is changed only if it still has that status,
so a concurrent write by the interpreter (or another reconciler) wins and the next look
decides again. Each change NOTIFYs the run events channel like the mirror's own upserts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconcile.outcomes import TemporalView
from schema.run import TERMINAL_RUN_STATUSES, StepError
from store.columns import utcnow
from store.run_starts import RunStarts
from store.runs import RUN_EVENTS_CHANNEL, Store, run_channel
from store.sql import raw_connection

_OPEN_STEPS = ", ".join(f"'{s}'" for s in ("pending", "running", "waiting"))
_OPEN_RUNS = ", ".join(f"'{s}'" for s in ("pending", "running", "stalled"))

_CLOSE_STEPS = f"""
WITH closed AS (
    UPDATE workflow_run_steps SET status = $2, error = $3::jsonb, finished_at = $4,
        duration_ms = EXTRACT(EPOCH FROM ($4 - started_at)) * 1000, updated_at = $4
    WHERE run_id = $1 AND status IN ({_OPEN_STEPS})
    RETURNING step_id, step_index, attempts, tokens_in, tokens_out, cost)
SELECT pg_notify($5, json_build_object(
    'kind', 'step', 'runId', $1::text, 'stepId', step_id, 'stepIndex', step_index,
    'status', $2::text, 'attempts', attempts, 'tokensIn', tokens_in, 'tokensOut', tokens_out,
    'cost', cost, 'error', left($6, 500))::text) FROM closed
"""

_SET_RUN = """
WITH written AS (
    UPDATE workflow_runs SET status = $3, error = $4::jsonb, finished_at = $5,
        started_at = COALESCE(started_at, $6),
        output_json = CASE WHEN $7 THEN $8::jsonb ELSE output_json END,
        actual_cost = CASE WHEN $7 THEN $9 ELSE actual_cost END,
        tokens_in = CASE WHEN $7 THEN $10 ELSE tokens_in END,
        tokens_out = CASE WHEN $7 THEN $11 ELSE tokens_out END
    WHERE id = $1 AND status = $2
    RETURNING id, actual_cost)
SELECT pg_notify($12, json_build_object('kind', 'run', 'runId', $1::text, 'status', $3::text,
                                        'actualCost', actual_cost)::text) FROM written
"""


@dataclass(frozen=True)
class MirrorRun:
    """What the reconciler needs of a run row."""

    run_id: str
    status: str
    created_at: datetime


class RunRepairs:
    """Reads the mirror's unfinished runs and writes Temporal's account of them."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._starts = RunStarts(store.engine)

    async def runs(self, environment: str, run_ids: Iterable[str]) -> dict[str, MirrorRun]:
        """The mirror rows of these run ids (ids that are not runs are left out)."""
        ids = [uuid.UUID(i) for i in set(run_ids) if _is_uuid(i)]
        if not ids:
            return {}
        return await self._select("id = ANY($2::uuid[])", environment, ids)

    async def with_status(self, environment: str, status: str,
                          created_before: datetime | None = None, limit: int = 500,
                          excluding: Iterable[str] = (),
                          unqueued: bool = False) -> dict[str, MirrorRun]:
        """Runs in one status (oldest first), optionally only those created before a time,
        not among ``excluding`` and (``unqueued``) with no start waiting for a dispatcher."""
        queue = " AND NOT EXISTS (SELECT 1 FROM run_starts s WHERE s.run_id = workflow_runs.id)" \
            if unqueued else ""
        return await self._select(
            f"status = $2 AND created_at < $3 AND NOT (id = ANY($5::uuid[])){queue} "
            "ORDER BY created_at LIMIT $4", environment, status, created_before or utcnow(),
            limit, [uuid.UUID(i) for i in excluding])

    async def cancel_queued(self, run_id: str, error: StepError) -> bool:
        """Cancel a run whose start is queued and unclaimed (never started): True if so."""
        return await self._starts.cancel(run_id, error.model_dump(mode="json"))

    async def start_queued(self, run_id: str) -> bool:
        """The run's start waits for a dispatcher (store/run_starts.py): not an orphan."""
        async with raw_connection(self._store.engine) as driver:
            return bool(await driver.fetchval(
                "SELECT EXISTS (SELECT 1 FROM run_starts WHERE run_id = $1)",
                uuid.UUID(run_id)))

    async def oldest_open(self, environment: str) -> datetime | None:
        """When the oldest run that is not finished was created."""
        async with raw_connection(self._store.engine) as driver:
            value = await driver.fetchval(
                f"SELECT min(created_at) FROM workflow_runs WHERE environment = $1 "
                f"AND status IN ({_OPEN_RUNS})", environment)
        return value if isinstance(value, datetime) else None

    async def apply(self, run: MirrorRun, view: TemporalView) -> bool:
        """Write Temporal's account over the row ``run`` saw; False if the row moved on.

        A finished run's unfinished steps are closed first with the run's status and error;
        a completed run's steps and output come from the result Temporal holds.
        """
        final = view.status in TERMINAL_RUN_STATUSES
        error = view.error.model_dump(mode="json") if view.error else None
        result = view.result if view.status == "completed" else None
        if result is not None and result.steps:
            await self._store.upsert_steps(result.steps)
        finished = (view.finished_at or utcnow()) if final else None
        async with raw_connection(self._store.engine) as driver:
            if final:
                step_status = "cancelled" if view.status == "cancelled" else "failed"
                await driver.execute(
                    _CLOSE_STEPS, uuid.UUID(run.run_id), step_status, _json(error), finished,
                    RUN_EVENTS_CHANNEL, view.error.message if view.error else None)
            written = await driver.fetch(
                _SET_RUN, uuid.UUID(run.run_id), run.status, view.status, _json(error),
                finished, view.started_at, result is not None,
                _json(result.output) if result else None,
                result.actual_cost if result else None,
                result.tokens_in if result else 0, result.tokens_out if result else 0,
                run_channel(view.status))
        return bool(written)

    async def _select(self, where: str, environment: str, *args: Any) -> dict[str, MirrorRun]:
        async with raw_connection(self._store.engine) as driver:
            records = await driver.fetch(
                f"SELECT id, status, created_at FROM workflow_runs WHERE environment = $1 "
                f"AND {where}", environment, *args)
        return {str(r["id"]): MirrorRun(str(r["id"]), str(r["status"]), r["created_at"])
                for r in records}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True

