"""API keys: random, shown once, stored only as a SHA-256 digest.

A key carries 256 bits of randomness, so a fast digest is enough at rest (the same choice
GitHub and Stripe make for tokens); a slow password hash would only add latency per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel, col

from store.access_tables import ApiKeyRow
from store.columns import utcnow
from store.sql import from_record, raw_connection, select_sql

KEY_PREFIX = "pp_"
PREFIX_CHARS = 6
"""Characters of a key shown after ``pp_`` (its stored ``prefix``): enough to tell keys apart
in a listing, never enough to matter: at most a quarter of what follows ``pp_``."""


def prefix_of(key: str) -> str:
    """The visible start of a key: ``pp_`` and at most 6 more characters, fewer for a short
    key (a given dev key like ``pp_dev_key`` shows ``pp_d``)."""
    rest = key.removeprefix(KEY_PREFIX)
    shown = min(PREFIX_CHARS, len(rest) // 4)
    return key[:len(key) - len(rest) + shown]


def digest(key: str) -> str:
    """The at-rest form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(environment: str) -> str:
    """A fresh key that names its environment, e.g. ``pp_dev_...``."""
    return f"{KEY_PREFIX}{environment}_{secrets.token_urlsafe(32)}"


class ApiKeys:
    """Creates and verifies API keys."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._engine = engine

    async def create(self, environment: str, name: str, key: str | None = None) -> str:
        """Store a key (a given one, for the dev key, or a new one) and return it once."""
        key = key or new_key(environment)
        async with self._sessions() as session:
            existing = await session.execute(
                select(ApiKeyRow).where(col(ApiKeyRow.key_hash) == digest(key))
            )
            if existing.scalar_one_or_none() is None:
                session.add(ApiKeyRow(environment=environment, name=name,
                                      prefix=prefix_of(key), key_hash=digest(key)))
                await session.commit()
        return key

    async def verify(self, key: str) -> ApiKeyRow | None:
        """The live key row for a presented key, or None.

        Read on every request and never cached, so a revoked key is refused at once: one
        prepared statement on a pooled connection (see ``store.runs.raw_connection``).
        """
        table = SQLModel.metadata.tables[ApiKeyRow.__tablename__]
        async with raw_connection(self._engine) as driver:
            record = await driver.fetchrow(
                select_sql(table, "key_hash = $1 AND revoked_at IS NULL"), digest(key))
        return None if record is None else from_record(ApiKeyRow, record)

    async def revoke(self, key_id: str, at: datetime | None = None) -> None:
        """Revoke a key by id."""
        async with self._sessions() as session:
            await session.execute(
                update(ApiKeyRow).where(col(ApiKeyRow.id) == key_id)
                .values(revoked_at=at or utcnow())
            )
            await session.commit()
