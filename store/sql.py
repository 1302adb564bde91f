"""SQL helpers the stores share: raw statements and connections, rows from records, conflicts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

T = TypeVar("T", bound=SQLModel)
V = TypeVar("V", bound=SQLModel)


@lru_cache(maxsize=32)
def select_sql(table: Table, where: str, order: str = "") -> str:
    """``SELECT <every column> FROM table WHERE …`` for the raw driver (hot-path reads)."""
    columns = ", ".join(column.name for column in table.columns)
    return f"SELECT {columns} FROM {table.name} WHERE {where}" + (
        f" ORDER BY {order}" if order else "")


@lru_cache(maxsize=8)
def insert_sql(table: Table, keys: tuple[str, ...]) -> str:
    """``INSERT INTO table (keys) VALUES ($1, …)`` with JSONB parameters cast."""
    params = ", ".join(f"${i}::jsonb" if isinstance(table.c[key].type, JSONB) else f"${i}"
                       for i, key in enumerate(keys, 1))
    return f"INSERT INTO {table.name} ({', '.join(keys)}) VALUES ({params})"


@asynccontextmanager
async def raw_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled connection's asyncpg connection, outside any transaction.

    The run-start path (key check, workflow lookup, run insert, read-back) goes through it
    with statements asyncpg prepares once per connection: one round trip each, against a
    session's BEGIN/statement/ROLLBACK and ~0.5-1 ms of ORM CPU per call.
    """
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        try:
            yield raw.driver_connection
        except asyncpg.PostgresError as exc:
            # Raised as SQLAlchemy would have (the API answers 422 for unstorable text).
            raise DBAPIError(None, None, exc) from exc


def from_record(model: type[T], record: Any) -> T:
    """A table model from a raw row (JSONB already decoded by the dialect's codec)."""
    return model(**dict(record))


def from_plain_record(model: type[T], table: Table, record: Any) -> T:
    """A table model from a row of a connection without the dialect's codecs (the mirror's
    pool), whose JSONB columns arrive as JSON text."""
    values = dict(record)
    for column in table.columns:
        if isinstance(column.type, JSONB) and isinstance(values.get(column.name), str):
            values[column.name] = json.loads(values[column.name])
    return model(**values)


def autocommit_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on autocommit connections of the engine's pool: for single statements only."""
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"),
                              class_=AsyncSession, expire_on_commit=False)


class Conflict(Exception):
    """A write that collides with an existing row (duplicate slug, idempotency key...)."""


async def insert_first_version(sessions: async_sessionmaker[AsyncSession], row: T,
                               first_version: Callable[[T], V], what: str) -> tuple[T, V]:
    """A versioned document's row and its version 1, in one transaction.

    ``first_version`` makes the version from the flushed row (it needs the row's id);
    Conflict, naming ``what``, when the document's slug is taken.
    """
    async with sessions() as session:
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"{what} already exists") from exc
        version = first_version(row)
        session.add(version)
        await session.commit()
        return row, version


async def kept_as_is(connection: asyncpg.Connection) -> None:
    """``reset`` for an asyncpg pool whose connections go back as they are. asyncpg's default
    reset is one more round trip per checkout (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN
    *; RESET ALL``): 8 % of the worker's event loop in B4. Only for pools whose statements
    leave no state to reset: each one autocommitted statement, with no ``SET``, ``LISTEN``,
    cursor, session lock or open transaction (the mirror's writes, the start queue)."""
