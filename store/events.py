"""Live run events: one Postgres LISTEN connection per process, fanned out to subscribers.

The mirror's upserts NOTIFY `RUN_EVENTS_CHANNEL` (a run's final row: `RUN_ENDS_CHANNEL`, all
a waiting request needs) in the transaction that writes the row, so an event arrives exactly
when its row is visible. The payload is small (`kind`, `runId`, `stepId`, `status`,
counters); readers treat it as a hint and the tables as the truth, so a lost connection
costs latency, never correctness.
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

from store.runs import RUN_ENDS_CHANNEL, RUN_EVENTS_CHANNEL

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
        # Per run: each subscriber's queue, and whether it takes only the run's end.
        self._queues: dict[str, dict[asyncio.Queue[RunEvent], bool]] = {}
        self._everything = 0  # subscribers that take every event: RUN_EVENTS_CHANNEL too
        self._listening_all = False

    async def _connect(self) -> None:
        async with self._lock:
            if self._connection is not None and not self._connection.is_closed():
                return
            _, options = self._engine.dialect.create_connect_args(self._engine.url)
            for name in _DIALECT_ONLY:
                options.pop(name, None)
            connection = await asyncpg.connect(**options)
            await connection.add_listener(RUN_ENDS_CHANNEL, self._dispatch)
            if self._everything:  # a new connection (the last one was lost): as before
                await connection.add_listener(RUN_EVENTS_CHANNEL, self._dispatch)
            self._connection, self._listening_all = connection, bool(self._everything)

    async def _listen_all(self, wanted: bool) -> None:
        """LISTEN to every transition while a subscriber takes them (UNLISTEN after the last):
        Postgres sends a listener every NOTIFY of the channel, ~15 per run."""
        async with self._lock:
            connection = self._connection
            if connection is None or connection.is_closed() or wanted == self._listening_all:
                return
            if wanted:
                await connection.add_listener(RUN_EVENTS_CHANNEL, self._dispatch)
            else:
                await connection.remove_listener(RUN_EVENTS_CHANNEL, self._dispatch)
            self._listening_all = wanted

    def _dispatch(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        # Every run's events reach this process; only the subscribed ones are parsed.
        found = _RUN_ID.search(payload)
        if found is not None and found.group(1) not in self._queues:
            return
        try:
            event: RunEvent = json.loads(payload)
        except ValueError:
            return
        an_end = channel == RUN_ENDS_CHANNEL
        for queue, ends_only in self._queues.get(str(event.get("runId")), {}).items():
            if an_end or not ends_only:
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, run_id: str, *, ends_only: bool = False
                        ) -> AsyncIterator[asyncio.Queue[RunEvent]]:
        """A queue of this run's events, live from the moment this returns; with
        ``ends_only``, just the notification of its final row."""
        queue: asyncio.Queue[RunEvent] = asyncio.Queue()
        self._queues.setdefault(run_id, {})[queue] = ends_only
        self._everything += not ends_only
        try:
            try:
                await self._connect()
                if not ends_only:
                    await self._listen_all(True)
            except (OSError, asyncpg.PostgresError) as exc:
                # Subscribers re-read the tables on a timer, so this degrades to polling.
                log.warning("run events: LISTEN unavailable, polling instead: %s", exc)
            yield queue
        finally:
            subscribers = self._queues.get(run_id, {})
            subscribers.pop(queue, None)
            if not subscribers:
                self._queues.pop(run_id, None)
            self._everything -= not ends_only
            if not self._everything:
                with contextlib.suppress(OSError, asyncpg.PostgresError):
                    await self._listen_all(False)

    async def aclose(self) -> None:
        """Close the LISTEN connection."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()
