"""Column helpers the tables share: timestamps set by the row, nullable times, JSONB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field


def utcnow() -> datetime:
    """Timezone-aware now, for row timestamps."""
    return datetime.now(UTC)


def ts(nullable: bool = True) -> Any:
    """A timezone-aware time column, empty by default."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def stamp() -> Any:
    """A timestamp set when the row is made (created_at, updated_at, received_at...)."""
    return Field(default_factory=utcnow,
                 sa_column=Column(DateTime(timezone=True), nullable=False))


def json_column() -> Any:
    """A nullable JSONB column (JSON null stored as SQL NULL)."""
    return Field(default=None, sa_column=Column(JSONB(none_as_null=True), nullable=True))
