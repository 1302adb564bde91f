"""API keys as their owners manage them: an environment's keys listed, one revoked.

Beside ``store.keys`` (creating and verifying keys); everything here is env-scoped.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from store.access_tables import ApiKeyRow
from store.columns import utcnow


async def list_keys(engine: AsyncEngine, environment: str) -> Sequence[ApiKeyRow]:
    """Every key of an environment, revoked ones too, oldest first."""
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    async with sessions() as session:
        result = await session.execute(
            select(ApiKeyRow).where(col(ApiKeyRow.environment) == environment)
            .order_by(col(ApiKeyRow.created_at), col(ApiKeyRow.id)))
        return list(result.scalars().all())


async def revoke_key(engine: AsyncEngine, environment: str,
                     key_id: uuid.UUID) -> ApiKeyRow | None:
    """Revoke a key of the environment (a revoked key keeps its first revocation time);
    the key's row, or None when the environment has no such key."""
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    async with sessions() as session:
        await session.execute(
            update(ApiKeyRow).where(col(ApiKeyRow.id) == key_id,
                                    col(ApiKeyRow.environment) == environment,
                                    col(ApiKeyRow.revoked_at).is_(None))
            .values(revoked_at=utcnow()))
        await session.commit()
        result = await session.execute(
            select(ApiKeyRow).where(col(ApiKeyRow.id) == key_id,
                                    col(ApiKeyRow.environment) == environment))
        return result.scalar_one_or_none()
