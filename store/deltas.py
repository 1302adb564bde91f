"""Text a running step streams, sent to the run's subscribers and never stored.

A delta travels as a NOTIFY on the run events channel (``kind: "delta"``), beside the
step transitions the mirror sends, so one LISTEN connection per API process carries both
(store/events.py). The step's stored output is the record; a delta is a view of it while
it is being written, and a lost one costs a subscriber some text, never the record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from store.runs import RUN_EVENTS_CHANNEL
from store.upsert import RawPool

MAX_NOTIFY_BYTES = 7900
"""Postgres refuses a NOTIFY payload of 8,000 bytes or more."""

_PUBLISH = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"


class StepDeltas:
    """Publishes deltas on the worker's plain asyncpg pool (one round trip per batch)."""

    def __init__(self, raw: RawPool) -> None:
        self._raw = raw

    async def publish(self, deltas: Sequence[dict[str, Any]]) -> None:
        """NOTIFY each delta, in order, in one statement."""
        payloads = [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in deltas]
        if any(len(p.encode()) > MAX_NOTIFY_BYTES for p in payloads):
            raise ValueError("a delta is over the NOTIFY payload limit; split its text")
        pool = await self._raw.pool()
        await pool.execute(_PUBLISH, RUN_EVENTS_CHANNEL, payloads)
