"""The mirror's own asyncpg pool: one round trip per write, none spent between checkouts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

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
