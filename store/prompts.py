"""Stored prompts and their immutable versions, env-scoped (migration 0005)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from schema.prompts import PromptCreate, PromptUpdate
from store.columns import utcnow
from store.sql import insert_first_version
from store.tables import PromptRow, PromptVersionRow


class PromptStore:
    """Reads and writes the prompt library."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    async def create(self, environment: str,
                     body: PromptCreate) -> tuple[PromptRow, PromptVersionRow]:
        """Store a prompt at version 1; Conflict when the slug is taken."""
        row = PromptRow(environment=environment, slug=body.id, name=body.name,
                        description=body.description)
        return await insert_first_version(
            self._sessions, row,
            lambda saved: PromptVersionRow(environment=environment, prompt_id=saved.id,
                                           version=1, prompt_system=body.prompt_system,
                                           prompt_user=body.prompt_user),
            f"prompt '{body.id}'")

    async def update(self, row: PromptRow, body: PromptUpdate) -> PromptVersionRow:
        """Append an immutable version and make it current."""
        async with self._sessions() as session:
            result = await session.execute(
                update(PromptRow).where(col(PromptRow.id) == row.id)
                .values(current_version=col(PromptRow.current_version) + 1,
                        name=body.name or row.name,
                        description=body.description if body.description is not None
                        else row.description, updated_at=utcnow())
                .returning(col(PromptRow.current_version)))
            number = int(result.scalar_one())
            version = PromptVersionRow(environment=row.environment, prompt_id=row.id,
                                       version=number, prompt_system=body.prompt_system,
                                       prompt_user=body.prompt_user)
            session.add(version)
            await session.commit()
            return version

    async def get(self, environment: str, slug: str) -> PromptRow | None:
        """A prompt by slug."""
        async with self._sessions() as session:
            result = await session.execute(select(PromptRow).where(
                col(PromptRow.environment) == environment, col(PromptRow.slug) == slug))
            return result.scalar_one_or_none()

    async def list(self, environment: str) -> Sequence[PromptRow]:
        """The prompts of an environment, by slug."""
        async with self._sessions() as session:
            result = await session.execute(select(PromptRow).where(
                col(PromptRow.environment) == environment).order_by(col(PromptRow.slug)))
            return list(result.scalars().all())

    async def version(self, prompt_id: uuid.UUID, number: int) -> PromptVersionRow | None:
        """One version of a prompt."""
        async with self._sessions() as session:
            result = await session.execute(select(PromptVersionRow).where(
                col(PromptVersionRow.prompt_id) == prompt_id,
                col(PromptVersionRow.version) == number))
            return result.scalar_one_or_none()

    async def versions(self, prompt_id: uuid.UUID) -> Sequence[PromptVersionRow]:
        """Every version of a prompt, oldest first."""
        async with self._sessions() as session:
            result = await session.execute(select(PromptVersionRow).where(
                col(PromptVersionRow.prompt_id) == prompt_id)
                .order_by(col(PromptVersionRow.version)))
            return list(result.scalars().all())

    async def resolve(self, environment: str, slug: str,
                      number: int | None) -> PromptVersionRow | None:
        """The pinned version, or the current one; None when either is missing."""
        row = await self.get(environment, slug)
        if row is None:
            return None
        return await self.version(row.id, number or row.current_version)
