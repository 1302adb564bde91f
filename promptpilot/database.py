"""The async SQLAlchemy engine over asyncpg, built from settings or an embedded server URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An engine with a bounded pool; connections are checked before use (Postgres restarts)."""
    engine = create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    if engine.dialect.driver == "asyncpg":
        engine.dialect.do_ping = _ping  # type: ignore[method-assign]
    return engine


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(text("select 1"))
