"""One-round-trip upserts for the mirror's hot path, straight through asyncpg.

The interpreter writes every step transition; building and compiling a SQLAlchemy
``INSERT … ON CONFLICT`` per call cost ~3.7 ms of CPU. Here the SQL is generated once per
column set from the table's own metadata, prepared once per connection by asyncpg, and the
upsert and its ``pg_notify`` travel as one statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine


@lru_cache(maxsize=32)
def upsert_sql(table: Table, keys: tuple[str, ...], conflict: tuple[str, ...],
               terminal: tuple[str, ...]) -> str:
    """INSERT … ON CONFLICT DO UPDATE guarded so a finished row is never reopened, then
    NOTIFY only when a row was written; the last two parameters are channel and payload."""
    params = ", ".join(
        f"${i}::jsonb" if isinstance(table.c[key].type, JSONB) else f"${i}"
        for i, key in enumerate(keys, 1))
    updates = ", ".join(f"{key} = EXCLUDED.{key}" for key in keys
                        if key not in conflict and key not in ("id", "created_at"))
    states = ", ".join(f"'{state}'" for state in terminal)
    return (
        f"WITH written AS (INSERT INTO {table.name} ({', '.join(keys)}) VALUES ({params}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates} "
        f"WHERE {table.name}.status NOT IN ({states}) OR EXCLUDED.status IN ({states}) "
        f"RETURNING 1) SELECT pg_notify(${len(keys) + 1}, ${len(keys) + 2}) FROM written"
    )


def _argument(table: Table, key: str, value: Any) -> Any:
    if isinstance(table.c[key].type, JSONB):
        return None if value is None else json.dumps(value, default=str)
    return value


async def upsert_and_notify(engine: AsyncEngine, table: Table, values: dict[str, Any],
                            conflict: Sequence[str], terminal: Sequence[str],
                            channel: str, event: dict[str, Any]) -> None:
    """Write one row and, if it changed, tell listeners; one prepared statement."""
    await upsert_many(engine, table, [(values, event)], conflict, terminal, channel)


async def upsert_many(engine: AsyncEngine, table: Table,
                      rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                      conflict: Sequence[str], terminal: Sequence[str], channel: str) -> None:
    """Write rows (each with its NOTIFY event) in order, on one pooled connection.

    Each row is its own statement, committed by asyncpg outside a transaction, so a row
    that lands stays even if a later one fails (every write is an idempotent upsert).
    """
    if not rows:
        return
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        for values, event in rows:
            keys = tuple(values)
            sql = upsert_sql(table, keys, tuple(conflict), tuple(terminal))
            arguments = [_argument(table, key, values[key]) for key in keys]
            await driver.execute(sql, *arguments, channel, json.dumps(event))
