"""Recorded model answers per environment: every answered call is kept, keyed by what
determines its answer, so an identical call with ``llmCache: use`` is answered again from here
without calling the model. Entries older than the retention are pruned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.upsert import RawPool

_FIND = text("SELECT result, run_id, step_id, recorded_at FROM llm_answers "
             "WHERE environment = :env AND key = :key AND recorded_at > :since")
_RECORD = text("""
INSERT INTO llm_answers (environment, key, result, run_id, step_id, recorded_at)
VALUES (:env, :key, CAST(:result AS jsonb), :run, :step, clock_timestamp())
ON CONFLICT (environment, key) DO UPDATE SET result = EXCLUDED.result,
  run_id = EXCLUDED.run_id, step_id = EXCLUDED.step_id, recorded_at = EXCLUDED.recorded_at
""")
# The same upsert for the raw pool: one round trip, prepared once per connection.
_RECORD_RAW = """
INSERT INTO llm_answers (environment, key, result, run_id, step_id, recorded_at)
VALUES ($1, $2, $3::jsonb, $4, $5, clock_timestamp())
ON CONFLICT (environment, key) DO UPDATE SET result = EXCLUDED.result,
  run_id = EXCLUDED.run_id, step_id = EXCLUDED.step_id, recorded_at = EXCLUDED.recorded_at
"""
_PRUNE = text("DELETE FROM llm_answers WHERE recorded_at < :before")


@dataclass(frozen=True)
class RecordedAnswer:
    """A recorded call's result (``LlmResult`` as JSON) and where it was recorded."""

    result: dict[str, Any]
    run_id: str
    step_id: str
    recorded_at: datetime


class LlmAnswers:
    """Looks up, records and prunes recorded model answers, over one engine."""

    def __init__(self, engine: AsyncEngine, raw: RawPool | None = None) -> None:
        self.engine, self.raw = engine, raw

    async def find(self, environment: str, key: str, since: datetime) -> RecordedAnswer | None:
        """The answer recorded for ``key`` after ``since``, or None."""
        async with self.engine.connect() as db:
            row = (await db.execute(_FIND, {"env": environment, "key": key,
                                            "since": since})).one_or_none()
        if row is None:
            return None
        return RecordedAnswer(result=dict(row.result), run_id=row.run_id, step_id=row.step_id,
                              recorded_at=row.recorded_at)

    async def record(self, environment: str, key: str, result_json: str, run_id: str,
                     step_id: str) -> None:
        """Keep (or replace) the answer of one call (on the raw pool when given: one round
        trip instead of a checkout's ping and a transaction's three)."""
        if self.raw is not None:
            pool = await self.raw.pool()
            await pool.execute(_RECORD_RAW, environment, key, result_json, run_id, step_id)
            return
        async with self.engine.begin() as db:
            await db.execute(_RECORD, {"env": environment, "key": key, "result": result_json,
                                       "run": run_id, "step": step_id})

    async def prune(self, keep: timedelta, now: datetime) -> int:
        """Delete answers recorded before ``now - keep``; how many went."""
        async with self.engine.begin() as db:
            result = await db.execute(_PRUNE, {"before": now - keep})
        return int(getattr(result, "rowcount", 0) or 0)
