"""Who may call: API keys (stored as digests) and the inspector's sessions (SQLModel tables)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel

from store.columns import stamp, ts


class ApiKeyRow(SQLModel, table=True):
    """An API key, stored as a SHA-256 digest; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    environment: str = Field(max_length=32, index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = stamp()
    last_used_at: datetime | None = ts()
    revoked_at: datetime | None = ts()


class UiSessionRow(SQLModel, table=True):
    """A signed-in inspector session (migration 0008): the cookie holds a random id, the row
    its SHA-256 digest; it lives until it expires, is signed out, or its key is revoked."""

    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_expires", "expires_at"),)

    id_hash: str = Field(primary_key=True, max_length=64)
    api_key_id: uuid.UUID = Field(foreign_key="api_keys.id", ondelete="CASCADE", index=True)
    csrf_token: str = Field(max_length=64)
    """The synchronizer token every form and script call of this session carries back."""
    created_at: datetime = stamp()
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
