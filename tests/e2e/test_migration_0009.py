"""Migration 0009 on rows written before it: refused deliveries become the trigger's count,
stored key prefixes are cut to what they may show."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.stack import EmbeddedPostgres
from store.database import make_engine
from store.migrate import alembic_config


@pytest.fixture
async def scratch(postgres: EmbeddedPostgres) -> AsyncIterator[AsyncEngine]:
    """An empty database of its own (the session's one is already at head)."""
    name = f"m0009_{uuid.uuid4().hex[:8]}"
    admin = make_engine(postgres.url, pool_size=1)
    async with admin.connect() as db:
        await (await db.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text(f"CREATE DATABASE {name}"))
    engine = make_engine(postgres.url_for(name), pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as db:
            await (await db.execution_options(isolation_level="AUTOCOMMIT")).execute(
                text(f"DROP DATABASE {name}"))
        await admin.dispose()


async def _migrate(engine: AsyncEngine, revision: str) -> None:
    def go(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as db:
        await db.run_sync(go)


async def test_old_rows_are_counted_cut_and_kept(scratch: AsyncEngine) -> None:
    await _migrate(scratch, "0008")
    workflow, trigger = uuid.uuid4(), uuid.uuid4()
    async with scratch.begin() as db:
        await db.execute(text(
            "insert into workflows (id, environment, slug, name, current_version, created_at,"
            " updated_at) values (:id, 'dev', 'w', 'w', 1, now(), now())"), {"id": workflow})
        await db.execute(text(
            "insert into triggers (id, environment, workflow_id, name, type, enabled, config,"
            " version_policy, webhook_secret, created_at, updated_at) values (:id, 'dev', :w,"
            " 'hook', 'webhook', true, '{}', 'latest', 'whsec_old', now(), now())"),
            {"id": trigger, "w": workflow})
        for verified in (True, False, False, False):
            await db.execute(text(
                "insert into webhook_deliveries (id, environment, trigger_id, verified,"
                " received_at) values (:id, 'dev', :t, :v, now())"),
                {"id": uuid.uuid4(), "t": trigger, "v": verified})
        for n, prefix in enumerate(("pp_dev_key", "pp_dev_Abcde", "pp_prod_xyz")):
            await db.execute(text(
                "insert into api_keys (id, environment, name, prefix, key_hash, created_at)"
                " values (:id, 'dev', :n, :p, :h, now())"),
                {"id": uuid.uuid4(), "n": f"k{n}", "p": prefix, "h": f"{n:064d}"})
    await _migrate(scratch, "0009")
    async with scratch.connect() as db:
        count = (await db.execute(text(
            "select refused_deliveries, webhook_secret from triggers where id = :t"),
            {"t": trigger})).one()
        rows = (await db.execute(text("select verified from webhook_deliveries"))).all()
        prefixes = (await db.execute(text("select prefix from api_keys order by name"))).all()
    assert tuple(count) == (3, "whsec_old")  # plain until its first verified delivery
    assert [r.verified for r in rows] == [True]
    # A whole short key (10 characters) is cut as prefix_of cuts it; a 12-character prefix,
    # whose key's length is unknown, keeps the 5 a 12-character key would show.
    assert [p.prefix for p in prefixes] == ["pp_d", "pp_de", "pp_pr"]
