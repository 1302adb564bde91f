"""The mirror's own asyncpg pool: one round trip per write, none spent between checkouts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from store.run_starts import RunStarts
from store.runs import Store


async def test_a_mirror_connection_goes_back_to_its_pool_without_a_reset(
        engine: AsyncEngine) -> None:
    # asyncpg resets a released connection with one more round trip (RESET ALL, UNLISTEN *,
    # ...); the mirror's connections hold no session state, so they skip it.
    store = Store(engine)
    seen: list[str] = []
    try:
        pool = await store.raw.pool()
        async with pool.acquire() as connection:
            connection.add_query_logger(lambda record: seen.append(record.query))
            await connection.execute("SELECT 1")
        async with pool.acquire() as connection:
            await connection.execute("SELECT 2")
    finally:
        await store.aclose()
    assert "SELECT 1" in seen
    assert not [query for query in seen if "RESET ALL" in query or "UNLISTEN" in query]


async def test_a_start_queue_connection_goes_back_to_its_pool_without_a_reset(
        engine: AsyncEngine) -> None:
    # The dispatchers' queue statements (claim, done, retry) are one autocommitted statement
    # each: three resets per run were measured on their pool before.
    starts = RunStarts(engine)
    seen: list[str] = []
    await starts.open_pool(size=1)
    try:
        async with starts._driver() as connection:
            connection.add_query_logger(lambda record: seen.append(record.query))
            await connection.execute("SELECT 1")
        assert await starts.count() >= 0  # the same connection, checked out again
    finally:
        await starts.aclose()
    assert "SELECT 1" in seen
    assert not [query for query in seen if "RESET ALL" in query or "UNLISTEN" in query]
