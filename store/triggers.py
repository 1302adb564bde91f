"""Triggers, webhook deliveries and replay ids in Postgres; every call is env-scoped or by id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel, col

from store.columns import utcnow
from store.sql import from_plain_record, from_record, raw_connection, select_sql
from store.tables import RunRow, WorkflowRow, WorkflowVersionRow
from store.trigger_tables import TriggerRow, WebhookDeliveryRow, WebhookSeenIdRow
from store.upsert import RawPool


class VersionUnavailable(LookupError):
    """The trigger's workflow or its pinned version no longer exists."""


class SecretSealer(Protocol):
    """Seals a webhook secret for its column (``payloads.secret_box.SecretBox``)."""

    def seal(self, text: str) -> str:
        """The at-rest form."""

    def open(self, stored: str) -> str:
        """The secret itself."""


class TriggerStore:
    """Reads and writes the trigger tables; webhook secrets are sealed on every write."""

    def __init__(self, engine: AsyncEngine, sealer: SecretSealer | None = None,
                 raw: RawPool | None = None) -> None:
        self._engine = engine
        self._raw = raw  # the mirror's pool, in a worker: the run-end lookup goes there
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._sealer = sealer

    def _seal(self, row: TriggerRow) -> None:
        if row.webhook_secret and self._sealer is not None:
            row.webhook_secret = self._sealer.seal(row.webhook_secret)

    def webhook_secret(self, row: TriggerRow) -> str | None:
        """The trigger's webhook secret in the clear (only signature checks ask)."""
        if not row.webhook_secret or self._sealer is None:
            return row.webhook_secret
        return self._sealer.open(row.webhook_secret)

    async def create(self, row: TriggerRow) -> TriggerRow:
        """Insert a trigger."""
        self._seal(row)
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
            return row

    async def save(self, row: TriggerRow) -> TriggerRow:
        """Write back a changed trigger."""
        row.updated_at = utcnow()
        self._seal(row)
        async with self._sessions() as session:
            merged = await session.merge(row)
            await session.commit()
            return merged

    async def get(self, trigger_id: uuid.UUID) -> TriggerRow | None:
        """A trigger by id, whatever its environment (webhooks and workers use this)."""
        async with self._sessions() as session:
            return await session.get(TriggerRow, trigger_id)

    async def get_in(self, environment: str, trigger_id: uuid.UUID) -> TriggerRow | None:
        """A trigger of this environment; others are invisible."""
        row = await self.get(trigger_id)
        return row if row is not None and row.environment == environment else None

    async def list(self, environment: str,
                   workflow_id: uuid.UUID | None = None) -> Sequence[TriggerRow]:
        """Triggers of an environment, oldest first."""
        query = select(TriggerRow).where(col(TriggerRow.environment) == environment)
        if workflow_id is not None:
            query = query.where(col(TriggerRow.workflow_id) == workflow_id)
        async with self._sessions() as session:
            result = await session.execute(query.order_by(col(TriggerRow.created_at)))
            return list(result.scalars().all())

    async def scheduled(self) -> Sequence[TriggerRow]:
        """Every scheduled trigger, of every environment, oldest first."""
        query = select(TriggerRow).where(col(TriggerRow.type) == "scheduled")
        async with self._sessions() as session:
            result = await session.execute(query.order_by(col(TriggerRow.created_at)))
            return list(result.scalars().all())

    async def delete(self, trigger_id: uuid.UUID) -> None:
        """Remove a trigger (its deliveries and seen ids cascade; runs keep their trigger id)."""
        async with self._sessions() as session:
            await session.execute(delete(TriggerRow).where(col(TriggerRow.id) == trigger_id))
            await session.commit()

    async def by_api_key(self, key_hash: str) -> TriggerRow | None:
        """The `api` trigger owning a key digest."""
        async with self._sessions() as session:
            result = await session.execute(
                select(TriggerRow).where(col(TriggerRow.api_key_hash) == key_hash))
            return result.scalar_one_or_none()

    async def event_triggers(self, environment: str,
                             source_workflow_id: str) -> Sequence[TriggerRow]:
        """Enabled event triggers listening to runs of one workflow.

        Asked at the end of every run, so it is one prepared statement, not an ORM session;
        with the mirror's pool (``raw``) not even the engine pool's checkout ping."""
        table = SQLModel.metadata.tables[TriggerRow.__tablename__]
        where = ("environment = $1 AND type = 'event' AND enabled "
                 "AND config ->> 'sourceWorkflowId' = $2")
        sql = select_sql(table, where)
        if self._raw is not None:
            async with (await self._raw.pool()).acquire() as driver:
                records = await driver.fetch(sql, environment, source_workflow_id)
            return [from_plain_record(TriggerRow, table, record) for record in records]
        async with raw_connection(self._engine) as driver:
            records = await driver.fetch(sql, environment, source_workflow_id)
        return [from_record(TriggerRow, record) for record in records]

    async def resolve_version(
        self, trigger: TriggerRow
    ) -> tuple[WorkflowRow, WorkflowVersionRow]:
        """The workflow and the version the trigger's policy names, read now (never cached)."""
        async with self._sessions() as session:
            workflow = await session.get(WorkflowRow, trigger.workflow_id)
            if workflow is None:
                raise VersionUnavailable("the trigger's workflow no longer exists")
            number = (trigger.pinned_version if trigger.version_policy == "pinned"
                      and trigger.pinned_version else workflow.current_version)
            result = await session.execute(select(WorkflowVersionRow).where(
                col(WorkflowVersionRow.workflow_id) == workflow.id,
                col(WorkflowVersionRow.version) == number))
            version = result.scalar_one_or_none()
            if version is None:
                raise VersionUnavailable(f"version {number} of '{workflow.slug}' does not exist")
            return workflow, version

    # -- webhooks ------------------------------------------------------------------------
    async def claim_webhook_id(self, trigger: TriggerRow, webhook_id: str) -> bool:
        """Record a verified webhook id; False when it was seen before (a replay)."""
        async with self._sessions() as session:
            session.add(WebhookSeenIdRow(environment=trigger.environment, trigger_id=trigger.id,
                                         webhook_id=webhook_id))
            try:
                await session.commit()
            except IntegrityError:
                return False
            return True

    async def release_webhook_id(self, trigger: TriggerRow, webhook_id: str) -> None:
        """Forget a claimed id whose run could not start, so the sender's retry is accepted."""
        async with self._sessions() as session:
            await session.execute(delete(WebhookSeenIdRow).where(
                col(WebhookSeenIdRow.trigger_id) == trigger.id,
                col(WebhookSeenIdRow.webhook_id) == webhook_id))
            await session.commit()

    async def seal_secret(self, row: TriggerRow) -> None:
        """Write a secret stored before sealing back sealed (read-both, migrated on use)."""
        secret = row.webhook_secret
        if not secret or self._sealer is None or self._sealer.seal(secret) == secret:
            return
        async with self._sessions() as session:
            await session.execute(update(TriggerRow).where(col(TriggerRow.id) == row.id)
                                  .values(webhook_secret=self._sealer.seal(secret)))
            await session.commit()

    async def count_refused(self, trigger: TriggerRow, reason: str) -> None:
        """Count a refused delivery on its trigger: one UPDATE, no row per delivery."""
        async with self._sessions() as session:
            await session.execute(
                update(TriggerRow).where(col(TriggerRow.id) == trigger.id).values(
                    refused_deliveries=col(TriggerRow.refused_deliveries) + 1,
                    last_refused_reason=reason[:200], last_refused_at=utcnow()))
            await session.commit()

    async def record_delivery(self, trigger: TriggerRow, webhook_id: str | None, *,
                              verified: bool, reason: str | None = None,
                              run_id: str | None = None) -> None:
        """Persist one verified delivery and what came of it."""
        async with self._sessions() as session:
            session.add(WebhookDeliveryRow(
                environment=trigger.environment, trigger_id=trigger.id,
                webhook_id=webhook_id[:200] if webhook_id else None, verified=verified,
                reason=reason, run_id=uuid.UUID(run_id) if run_id else None))
            await session.commit()

    async def deliveries(self, trigger_id: uuid.UUID) -> Sequence[WebhookDeliveryRow]:
        """A trigger's deliveries, oldest first."""
        async with self._sessions() as session:
            result = await session.execute(
                select(WebhookDeliveryRow).where(col(WebhookDeliveryRow.trigger_id) == trigger_id)
                .order_by(col(WebhookDeliveryRow.received_at)))
            return list(result.scalars().all())

    # -- metrics -------------------------------------------------------------------------
    async def metrics(self, trigger: TriggerRow, last: int) -> dict[str, Any]:
        """Counts of the trigger's runs by status and its last runs, newest first."""
        where = (col(RunRow.environment) == trigger.environment,
                 col(RunRow.trigger_id) == trigger.id)
        async with self._sessions() as session:
            counts = await session.execute(
                select(col(RunRow.status), func.count()).where(*where)
                .group_by(col(RunRow.status)))
            runs = await session.execute(
                select(RunRow).where(*where)
                .order_by(col(RunRow.created_at).desc()).limit(last))
            by_status = {str(status): int(count) for status, count in counts.all()}
            return {"by_status": by_status, "total": sum(by_status.values()),
                    "last_runs": list(runs.scalars().all())}
