"""Triggers and their webhook deliveries (SQLModel tables; migrations 0003, 0009)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from store.columns import json_column, stamp, ts


class TriggerRow(SQLModel, table=True):
    """A trigger: what starts runs of one workflow, and how."""

    __tablename__ = "triggers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    environment: str = Field(max_length=32, index=True)
    workflow_id: uuid.UUID = Field(foreign_key="workflows.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=200)
    type: str = Field(max_length=16)
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    input_json: dict[str, Any] | None = json_column()
    version_policy: str = Field(default="latest", max_length=16)
    pinned_version: int | None = None
    # `api` triggers: SHA-256 digest of their own key (shown once). `webhook` triggers: the
    # HMAC secret, which verification needs (a digest cannot verify), sealed with the payload
    # key ring (store.triggers.SecretSealer; rows from before 0009 are plain until first use).
    api_key_hash: str | None = Field(default=None, max_length=64, unique=True)
    webhook_secret: str | None = Field(default=None, max_length=400)
    # Refused deliveries (unsigned, malformed, forged, replayed) cost this counter, no row.
    refused_deliveries: int = Field(default=0, sa_column=Column(
        BigInteger, nullable=False, server_default="0"))
    last_refused_reason: str | None = Field(default=None, max_length=200)
    last_refused_at: datetime | None = ts()
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class WebhookDeliveryRow(SQLModel, table=True):
    """A verified webhook delivery and what came of it (refused ones are only counted, on
    the trigger: a sender without the secret cannot fill this table)."""

    __tablename__ = "webhook_deliveries"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    environment: str = Field(max_length=32, index=True)
    trigger_id: uuid.UUID = Field(foreign_key="triggers.id", ondelete="CASCADE", index=True)
    webhook_id: str | None = Field(default=None, max_length=200)
    verified: bool
    reason: str | None = Field(default=None, max_length=200)
    run_id: uuid.UUID | None = None
    received_at: datetime = stamp()


class WebhookSeenIdRow(SQLModel, table=True):
    """Webhook ids already accepted per trigger: the unique constraint refuses replays."""

    __tablename__ = "webhook_seen_ids"
    __table_args__ = (UniqueConstraint("trigger_id", "webhook_id", name="uq_webhook_seen"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    environment: str = Field(max_length=32, index=True)
    trigger_id: uuid.UUID = Field(foreign_key="triggers.id", ondelete="CASCADE")
    webhook_id: str = Field(max_length=200)
    seen_at: datetime = stamp()
