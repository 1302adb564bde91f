"""A stored key prefix tells keys apart without giving any key away."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.keys import ApiKeys, digest


async def _stored_prefix(engine: AsyncEngine, key: str) -> str:
    async with engine.connect() as db:
        return str((await db.execute(text("select prefix from api_keys where key_hash = :h"),
                                     {"h": digest(key)})).scalar_one())


async def test_a_short_key_is_not_stored_whole_and_a_long_one_shows_six_characters(
        engine: AsyncEngine) -> None:
    keys = ApiKeys(engine)
    short = await keys.create("dev", "a short given key", "pp_dev_key")
    generated = await keys.create("dev", "a generated key")
    assert await _stored_prefix(engine, short) == "pp_d"
    shown = await _stored_prefix(engine, generated)
    assert generated.startswith(shown)
    assert len(shown) == len("pp_") + 6
