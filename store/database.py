"""The async SQLAlchemy engine over asyncpg, built from settings or an embedded server URL."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import store.all_tables  # noqa: F401  (every table known: foreign keys resolve across modules)


def async_url(url: str) -> str:
    """Accept `postgres://` and `postgresql://` URLs and use the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def _ping(dbapi_connection: Any) -> bool:
    """The pool's check of a connection before use: one round trip.

    The asyncpg dialect's own ping wraps its statement in BEGIN/ROLLBACK (for pgbouncer's
    transaction mode), three round trips on every checkout; outside a transaction the same
    statement is one. Failures are still reported as disconnects, so a connection that died
    with a Postgres restart is replaced as before.
    """
    was = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.ping()
    finally:
        dbapi_connection.autocommit = was
    return True


READ_DEPTH = 128
"""How deep a JSON value read back from Postgres is shown; deeper parts are replaced."""
CLIPPED = f"(not shown: nested more than {READ_DEPTH} levels deep)"


def _integer(digits: str) -> int | str:
    # Python refuses integers of more than 4300 digits; JSONB's numeric holds them.
    return int(digits) if len(digits) <= 4000 else digits


def clip(value: Any, depth: int = READ_DEPTH) -> Any:
    """The value with every object or array nested deeper than ``depth`` replaced."""
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return CLIPPED
    if isinstance(value, dict):
        return {key: clip(item, depth - 1) for key, item in value.items()}
    return [clip(item, depth - 1) for item in value]


def read_json(document: str) -> Any:
    """JSON from a JSON/JSONB column, for any value the column can hold.

    A JSONB value can nest thousands of levels deep and hold integers of any length: Python's
    decoder fails on both (RecursionError, ValueError) and pydantic cannot serialise more than
    ~250 levels, so one such row made every list it appeared in answer 500. Values up to 200
    levels (everything the API and the interpreter write) decode as they are, in Rust.
    """
    try:
        return from_json(document)
    except ValueError:
        pass  # deeper than 200 levels, or an integer past 4300 digits
    try:
        return clip(json.loads(document, parse_int=_integer))
    except RecursionError:
        return CLIPPED


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An engine with a bounded pool; connections are checked before use (Postgres restarts).

    ``hide_parameters``: a failed statement's error never quotes its parameters (a webhook
    secret, a key digest), whoever logs it. JSON columns are read by ``read_json``.
    """
    engine = create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        hide_parameters=True, json_deserializer=read_json,
    )
    if engine.dialect.driver == "asyncpg":
        engine.dialect.do_ping = _ping  # type: ignore[method-assign]
    return engine


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(text("select 1"))
