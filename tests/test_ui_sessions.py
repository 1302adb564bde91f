"""Inspector sessions in Postgres: only a digest is stored, and a session ends by expiry,
sign-out or its key's revocation."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.keys import ApiKeys
from store.sessions import Sessions, digest


async def test_a_session_lives_until_expiry_sign_out_or_revocation(engine: AsyncEngine) -> None:
    keys, sessions = ApiKeys(engine), Sessions(engine)
    key = await keys.create("dev", "session store test")
    row = await keys.verify(key)
    assert row is not None

    session_id, csrf = await sessions.start(row.id, 3600)
    found = await sessions.find(session_id)
    assert found is not None
    assert (found.key.id, found.csrf_token) == (row.id, csrf)
    async with engine.connect() as db:
        stored = (await db.execute(text("SELECT id_hash FROM ui_sessions WHERE api_key_id = :k"),
                                   {"k": row.id})).scalars().all()
    assert stored == [digest(session_id)]  # the id itself is nowhere in the table
    assert await sessions.find(digest(session_id)) is None  # nor does the digest open it

    expired, _ = await sessions.start(row.id, -1)
    assert await sessions.find(expired) is None

    await sessions.end(session_id)
    assert await sessions.find(session_id) is None

    live, _ = await sessions.start(row.id, 3600)
    assert await sessions.find(live) is not None
    await keys.revoke(str(row.id))
    assert await sessions.find(live) is None
