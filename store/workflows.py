"""The workflow documents: a workflow and its immutable versions (the Store's first half)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel, col

from schema.definition import WorkflowDefinition
from store.columns import utcnow
from store.sql import from_record, insert_first_version, raw_connection, select_sql
from store.tables import WorkflowRow, WorkflowVersionRow

VERSION_CACHE_SIZE = 512


def stored(definition: WorkflowDefinition) -> dict[str, Any]:
    """A definition as a version row holds it: unset optional fields left out, not `null`."""
    return definition.model_dump(mode="json", exclude_none=True)


class VersionStamp(NamedTuple):
    """A version's number and creation time, for lists."""

    version: int
    created_at: datetime


class WorkflowVersions:
    """Reads and writes workflows and their versions; the Store sets the sessions up."""

    engine: AsyncEngine
    _sessions: async_sessionmaker[AsyncSession]
    _single: async_sessionmaker[AsyncSession]
    # Versions are immutable once written: cached by (workflow id, version number).
    _versions: OrderedDict[tuple[uuid.UUID, int], WorkflowVersionRow]

    async def create_workflow(
        self, environment: str, definition: WorkflowDefinition
    ) -> tuple[WorkflowRow, WorkflowVersionRow]:
        """Store a new workflow at version 1; Conflict when the slug is taken."""
        row = WorkflowRow(environment=environment, slug=definition.id,
                          name=definition.name, description=definition.description)
        return await insert_first_version(
            self._sessions, row,
            lambda saved: WorkflowVersionRow(environment=environment, workflow_id=saved.id,
                                             version=1,
                                             definition=stored(definition)),
            f"workflow '{definition.id}'")

    async def update_workflow(
        self, row: WorkflowRow, definition: WorkflowDefinition
    ) -> WorkflowVersionRow:
        """Append an immutable version and make it current."""
        async with self._sessions() as session:
            result = await session.execute(
                update(WorkflowRow).where(col(WorkflowRow.id) == row.id)
                .values(current_version=col(WorkflowRow.current_version) + 1, name=definition.name,
                        description=definition.description, updated_at=utcnow())
                .returning(col(WorkflowRow.current_version))
            )
            number = int(result.scalar_one())
            version = WorkflowVersionRow(environment=row.environment, workflow_id=row.id,
                                         version=number,
                                         definition=stored(definition))
            session.add(version)
            await session.commit()
            return version

    async def list_workflows(self, environment: str) -> Sequence[WorkflowRow]:
        """All workflows of an environment, by slug."""
        async with self._sessions() as session:
            result = await session.execute(
                select(WorkflowRow).where(col(WorkflowRow.environment) == environment)
                .order_by(col(WorkflowRow.slug))
            )
            return list(result.scalars().all())

    async def get_workflow(self, environment: str, slug: str) -> WorkflowRow | None:
        """A workflow by slug."""
        table = SQLModel.metadata.tables[WorkflowRow.__tablename__]
        async with raw_connection(self.engine) as driver:
            record = await driver.fetchrow(
                select_sql(table, "environment = $1 AND slug = $2"), environment, slug)
        return None if record is None else from_record(WorkflowRow, record)

    async def get_workflow_by_id(self, workflow_id: uuid.UUID) -> WorkflowRow | None:
        """A workflow by its uuid."""
        async with self._sessions() as session:
            return await session.get(WorkflowRow, workflow_id)

    async def get_version(self, workflow_id: uuid.UUID, version: int) -> WorkflowVersionRow | None:
        """One version of a workflow (immutable, so served from a cache once read)."""
        key = (workflow_id, version)
        if (cached := self._versions.get(key)) is not None:
            self._versions.move_to_end(key)
            return cached
        async with self._single() as session:
            result = await session.execute(
                select(WorkflowVersionRow).where(
                    col(WorkflowVersionRow.workflow_id) == workflow_id,
                    col(WorkflowVersionRow.version) == version)
            )
            row = result.scalar_one_or_none()
        if row is not None:  # a missing version is not cached: it may be written later
            self._versions[key] = row
            if len(self._versions) > VERSION_CACHE_SIZE:
                self._versions.popitem(last=False)
        return row

    async def list_version_stamps(self, workflow_id: uuid.UUID) -> list[VersionStamp]:
        """Every version number of a workflow and when it was made, oldest first: what a
        list shows, without reading a definition (each up to ``max_definition_bytes``)."""
        async with self._single() as session:
            result = await session.execute(
                select(col(WorkflowVersionRow.version), col(WorkflowVersionRow.created_at))
                .where(col(WorkflowVersionRow.workflow_id) == workflow_id)
                .order_by(col(WorkflowVersionRow.version))
            )
            return [VersionStamp(int(number), created) for number, created in result.all()]
