"""Live run events: one Postgres LISTEN connection per process, fanned out to subscribers.

The mirror's upserts NOTIFY `RUN_EVENTS_CHANNEL` in the transaction that writes the row
(see `Store._write_and_notify`), so an event arrives exactly when its row is visible. The
payload is small (`kind`, `runId`, `stepId`, `status`, counters); readers treat it as a
hint and the tables as the truth, so a lost connection costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from store.runs import RUN_EVENTS_CHANNEL

log = logging.getLogger("store.events")
# Options SQLAlchemy's asyncpg dialect understands but asyncpg.connect does not.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func",
                 "async_creator_fn")

RunEvent = dict[str, Any]
_RUN_ID = re.compile(r'"runId"\s*:\s*"([^"]*)"')


class RunEventHub:
    """Subscribes run ids to the NOTIFY stream; the connection opens on first use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        # Per run: each subscriber's queue and the event kinds it takes (None: every kind).
        self._queues: dict[str, dict[asyncio.Queue[RunEvent], frozenset[str] | None]] = {}

    async def _connect(self) -> None:
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed():
                return
            _, options = self._engine.dialect.create_connect_args(self._engine.url)
            for name in _DIALECT_ONLY:
                options.pop(name, None)
            connection = await asyncpg.connect(**options)
            await connection.add_listener(RUN_EVENTS_CHANNEL, self._dispatch)
            self._connection = connection

    def _dispatch(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        # Every run's events reach this process; only the subscribed ones are parsed.
        found = _RUN_ID.search(payload)
        if found is not None and found.group(1) not in self._queues:
            return
        try:
            event: RunEvent = json.loads(payload)
        except ValueError:
            return
        kind = event.get("kind")
        for queue, kinds in self._queues.get(str(event.get("runId")), {}).items():
            if kinds is None or kind in kinds:
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, run_id: str, kinds: frozenset[str] | None = None
                        ) -> AsyncIterator[asyncio.Queue[RunEvent]]:
        """A queue of this run's events (of ``kinds`` only, when given), live from the moment
        this returns."""
        queue: asyncio.Queue[RunEvent] = asyncio.Queue()
        self._queues.setdefault(run_id, {})[queue] = kinds
        try:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as exc:
                # Subscribers re-read the tables on a timer, so this degrades to polling.
                log.warning("run events: LISTEN unavailable, polling instead: %s", exc)
            yield queue
        finally:
            subscribers = self._queues.get(run_id, {})
            subscribers.pop(queue, None)
            if not subscribers:
                self._queues.pop(run_id, None)

    async def aclose(self) -> None:
        """Close the LISTEN connection."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()
