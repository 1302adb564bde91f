"""Shared limits of every worker: provider call grants and state, daily spend (SQLModel tables)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index
from sqlmodel import Field, SQLModel

from store.columns import stamp, ts


class ProviderGrantRow(SQLModel, table=True):
    """One model call let through a provider's declared limits (migration 0010): the rate
    windows count these rows, calls in flight are those not yet released."""

    __tablename__ = "provider_grants"
    __table_args__ = (Index("ix_provider_grants_provider_granted", "provider", "granted_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(),
                                                          primary_key=True))
    provider: str = Field(max_length=100)
    granted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    tokens: int
    released_at: datetime | None = ts()


class ProviderStateRow(SQLModel, table=True):
    """A provider's shared state: paused after a 429 (every run waits out its Retry-After),
    and its circuit breaker (failures in a row; short-circuited until ``open_until``)."""

    __tablename__ = "provider_state"

    provider: str = Field(primary_key=True, max_length=100)
    paused_until: datetime | None = ts()
    failures: int = 0
    open_until: datetime | None = ts()
    updated_at: datetime = stamp()


class DailySpendRow(SQLModel, table=True):
    """Spend of one day (UTC) in one scope (``env:<environment>`` or ``workflow:<env>/<slug>``),
    and what calls in flight hold against its daily limit (migration 0011)."""

    __tablename__ = "daily_spend"

    scope: str = Field(primary_key=True, max_length=200)
    day: date = Field(primary_key=True)
    spent_usd: float = 0.0
    held_usd: float = 0.0
