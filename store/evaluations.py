"""Evaluations in Postgres: created running by the API, finished by the evaluation workflow."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col, select

from store.columns import utcnow
from store.tables import EvaluationRow

_FINISH = text("UPDATE evaluations SET status = :status, cases = CAST(:cases AS jsonb), "
               "summary = CAST(:summary AS jsonb), error = :error, finished_at = :at "
               "WHERE id = :id")


class Evaluations:
    """Creates, finishes and reads evaluations, over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    async def create(self, row: EvaluationRow) -> None:
        """Record a new evaluation (status ``running``)."""
        async with self._sessions() as session:
            session.add(row)
            await session.commit()

    async def finish(self, evaluation_id: str, status: str, cases_json: str | None,
                     summary_json: str | None, error: str | None) -> None:
        """Record how an evaluation ended."""
        async with self.engine.begin() as db:
            await db.execute(_FINISH, {"id": uuid.UUID(evaluation_id), "status": status,
                                       "cases": cases_json, "summary": summary_json,
                                       "error": error, "at": utcnow()})

    async def get(self, environment: str, evaluation_id: uuid.UUID) -> EvaluationRow | None:
        """An evaluation of this environment, or None."""
        async with self._sessions() as session:
            row = await session.get(EvaluationRow, evaluation_id)
        return row if row is not None and row.environment == environment else None


    async def list_for_workflow(self, environment: str, workflow_id: uuid.UUID,
                                limit: int = 50) -> list[EvaluationRow]:
        """The workflow's evaluations in this environment, newest first."""
        query = (select(EvaluationRow)
                 .where(EvaluationRow.environment == environment,
                        EvaluationRow.workflow_id == workflow_id)
                 .order_by(col(EvaluationRow.created_at).desc()).limit(limit))
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())
