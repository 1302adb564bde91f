"""Apply the mirror's Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", "store:migrations")
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest revision; safe to call on every start."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def upgrade_sync(url: str) -> None:
    """Blocking variant for scripts."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def _go() -> None:
        engine = create_async_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(_go())
