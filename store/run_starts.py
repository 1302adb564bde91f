"""The queue of runs accepted but not yet started in Temporal (``run_starts`` rows).

A run's row and its start are written by one statement (``Store.create_run`` with a start),
so the API can answer before Temporal is asked; dispatchers claim due rows with
``FOR UPDATE SKIP LOCKED`` and a lease, start the workflow, then delete the row.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from store.runs import RUN_ENDS_CHANNEL, RUN_STARTS_CHANNEL
from store.sql import kept_as_is, raw_connection

__all__ = ["RUN_STARTS_CHANNEL", "ClaimedStart", "RunStarts"]

_CLAIM = """
UPDATE run_starts s SET claimed_until = now() + make_interval(secs => $2),
    attempts = s.attempts + 1
FROM (SELECT run_id FROM run_starts
      WHERE {where} AND (claimed_until IS NULL OR claimed_until < now())
      ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
WHERE s.run_id = due.run_id
RETURNING s.run_id, s.environment, s.start_input, s.attempts
"""
_CLAIM_DUE = _CLAIM.format(
    where="next_attempt_at <= now() AND ($3::text[] IS NULL OR environment = ANY($3)) "
          "AND created_at <= now() - make_interval(secs => $4)")
_CLAIM_ONE = _CLAIM.format(where="run_id = $3")

_RETRY = """
UPDATE run_starts SET claimed_until = NULL, last_error = $3,
    next_attempt_at = now() + make_interval(secs => $2)
WHERE run_id = $1
"""

# A start that will not be made (refused for good, or cancelled): the start leaves the queue
# and the pending run ends with $4 and the reason; $5: only if no dispatcher holds it.
_DROP = """
WITH dropped AS (
    DELETE FROM run_starts WHERE run_id = $1
        AND (NOT $5 OR claimed_until IS NULL OR claimed_until < now())
    RETURNING run_id),
written AS (
    UPDATE workflow_runs SET status = $4, error = $2::jsonb, finished_at = now()
    WHERE id IN (SELECT run_id FROM dropped) AND status = 'pending'
    RETURNING id)
SELECT pg_notify($3, json_build_object('kind', 'run', 'runId', $1::text,
                                       'status', $4::text, 'actualCost', NULL)::text)
FROM written
"""


@dataclass(frozen=True)
class ClaimedStart:
    """A start a dispatcher holds until it is done, retried or failed."""

    run_id: str
    environment: str
    start_input: str
    """The interpreter's input, JSON text."""
    attempts: int


class RunStarts:
    """Reads and writes the start queue."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pool: asyncpg.Pool | None = None

    async def open_pool(self, size: int = 2) -> None:
        """Connections of its own (a dispatcher's): no pre-ping round trip per statement and
        no competition with the requests for the engine's pool. Every statement here is one
        autocommitted statement, so a connection goes back without asyncpg's reset."""
        self._pool = await asyncpg.create_pool(**_connect_options(self.engine), min_size=1,
                                               max_size=size, reset=kept_as_is)

    async def aclose(self) -> None:
        """Close the own connections, if any."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _driver(self) -> AsyncIterator[Any]:
        if self._pool is None:
            async with raw_connection(self.engine) as driver:
                yield driver
        else:
            async with self._pool.acquire() as driver:
                yield driver

    async def claim_due(self, environments: Sequence[str] | None, limit: int,
                        lease_seconds: float, min_age_seconds: float = 0
                        ) -> list[ClaimedStart]:
        """Up to ``limit`` due starts of these environments (None: all) queued at least
        ``min_age_seconds`` ago, leased to the caller."""
        wanted = None if environments is None else list(environments)
        async with self._driver() as driver:
            records = await driver.fetch(_CLAIM_DUE, limit, lease_seconds, wanted,
                                         min_age_seconds)
        return [_claimed(r) for r in records]

    async def claim(self, run_id: str, lease_seconds: float) -> ClaimedStart | None:
        """This run's start if it is still queued and nobody holds it (due or not)."""
        async with self._driver() as driver:
            records = await driver.fetch(_CLAIM_ONE, 1, lease_seconds, uuid.UUID(run_id))
        return _claimed(records[0]) if records else None

    async def done(self, run_id: str) -> None:
        """Temporal has the workflow: the start leaves the queue."""
        async with self._driver() as driver:
            await driver.execute("DELETE FROM run_starts WHERE run_id = $1", uuid.UUID(run_id))

    async def retry_later(self, run_id: str, delay_seconds: float, error: str) -> None:
        """Release the claim; the start is due again after ``delay_seconds``."""
        async with self._driver() as driver:
            await driver.execute(_RETRY, uuid.UUID(run_id), delay_seconds, error[:2000])

    async def fail(self, run_id: str, error: dict[str, Any]) -> None:
        """Temporal refused the start for good: the run is ``failed`` with ``error``."""
        async with self._driver() as driver:
            await driver.fetch(_DROP, uuid.UUID(run_id), json.dumps(error), RUN_ENDS_CHANNEL,
                               "failed", False)

    async def cancel(self, run_id: str, error: dict[str, Any]) -> bool:
        """Cancel a run before its start is made: True when it was queued, unclaimed, and is
        now ``cancelled``. A claimed start may be in Temporal already: False."""
        async with self._driver() as driver:
            written = await driver.fetch(_DROP, uuid.UUID(run_id), json.dumps(error),
                                         RUN_ENDS_CHANNEL, "cancelled", True)
        return bool(written)

    async def queued(self, run_ids: Sequence[str]) -> set[str]:
        """Which of these runs still wait for their start (a dispatcher holds them)."""
        if not run_ids:
            return set()
        async with self._driver() as driver:
            records = await driver.fetch(
                "SELECT run_id FROM run_starts WHERE run_id = ANY($1::uuid[])",
                [uuid.UUID(i) for i in run_ids])
        return {str(r["run_id"]) for r in records}

    async def listen(self, wake: Callable[[], None]) -> asyncpg.Connection:
        """A connection of its own that calls ``wake`` on every queued start; the caller
        closes it."""
        connection = await asyncpg.connect(**_connect_options(self.engine))
        await connection.add_listener(RUN_STARTS_CHANNEL, lambda *_: wake())
        return connection

    async def count(self) -> int:
        """Starts waiting in the queue (all environments)."""
        async with self._driver() as driver:
            return int(await driver.fetchval("SELECT count(*) FROM run_starts"))


def _connect_options(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg's connect arguments for the engine's database."""
    _, options = engine.dialect.create_connect_args(engine.url)
    for name in ("prepared_statement_cache_size", "prepared_statement_name_func",
                 "async_creator_fn"):  # SQLAlchemy's dialect options, not asyncpg's
        options.pop(name, None)
    return dict(options)


def _claimed(record: Any) -> ClaimedStart:
    return ClaimedStart(str(record["run_id"]), str(record["environment"]),
                        str(record["start_input"]), int(record["attempts"]))
