"""Provider limits shared by every run and worker, in Postgres: rate windows over the calls
granted, calls in flight, and each provider's pause (after a 429) and circuit breaker.

One transaction per admission, serialised per provider by an advisory lock; times are the
database's clock (``clock_timestamp()``), so workers on different machines agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Rows older than this are dropped; a call never released (its worker died) stops counting
# as in flight after STALE_IN_FLIGHT.
KEEP = timedelta(minutes=2)
STALE_IN_FLIGHT = timedelta(minutes=10)

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('provider-limits:' || :p))")
_STATE = text("SELECT clock_timestamp() AS now, s.paused_until, s.open_until, s.failures "
              "FROM (SELECT 1) one LEFT JOIN provider_state s ON s.provider = :p")
_WINDOWS = text("""
SELECT
  count(*) FILTER (WHERE granted_at > :second OR released_at IS NULL
                   OR released_at > :second) AS in_second,
  min(coalesce(released_at, :now)) FILTER (WHERE granted_at > :second OR released_at IS NULL
                                           OR released_at > :second) AS first_in_second,
  count(*) FILTER (WHERE granted_at > :minute) AS in_minute,
  min(granted_at) FILTER (WHERE granted_at > :minute) AS first_in_minute,
  coalesce(sum(tokens) FILTER (WHERE granted_at > :minute), 0) AS tokens_in_minute,
  count(*) FILTER (WHERE released_at IS NULL) AS in_flight
FROM provider_grants WHERE provider = :p AND granted_at > :stale
""")
_GRANT = text("INSERT INTO provider_grants (provider, granted_at, tokens) "
              "VALUES (:p, clock_timestamp(), :tokens) RETURNING id")
_RELEASE = text("UPDATE provider_grants SET released_at = clock_timestamp() WHERE id = :id")
_PRUNE = text("DELETE FROM provider_grants WHERE provider = :p AND granted_at < :keep "
              "AND (released_at IS NOT NULL OR granted_at < :stale)")
_PAUSE = text("""
INSERT INTO provider_state (provider, paused_until, failures, updated_at)
VALUES (:p, clock_timestamp() + CAST(:wait AS interval), 0, clock_timestamp())
ON CONFLICT (provider) DO UPDATE SET
  paused_until = greatest(coalesce(provider_state.paused_until, EXCLUDED.paused_until),
                          EXCLUDED.paused_until),
  updated_at = EXCLUDED.updated_at
""")
_FAILED = text("""
INSERT INTO provider_state (provider, failures, updated_at)
VALUES (:p, 1, clock_timestamp())
ON CONFLICT (provider) DO UPDATE SET
  failures = provider_state.failures + 1, updated_at = EXCLUDED.updated_at
RETURNING failures
""")
_OPEN = text("UPDATE provider_state SET failures = 0, "
             "open_until = clock_timestamp() + CAST(:open AS interval), "
             "updated_at = clock_timestamp() WHERE provider = :p")
_SUCCEEDED = text("UPDATE provider_state SET failures = 0, updated_at = clock_timestamp() "
                  "WHERE provider = :p AND failures > 0")


@dataclass(frozen=True)
class Windows:
    """What one admission enforces: None is no limit of that kind."""

    per_second: float | None = None
    per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent: int | None = None
    margin: timedelta = timedelta(0)

    @property
    def counted(self) -> bool:
        """Whether calls must be granted (any limit set), or only pauses and breakers apply."""
        return any(v is not None for v in (self.per_second, self.per_minute,
                                           self.tokens_per_minute, self.concurrent))


@dataclass(frozen=True)
class Admission:
    """A call let through (``grant`` to release when it ends, None when nothing is counted),
    or how long to wait and why, or that the provider is short-circuited until ``open_until``."""

    grant: int | None = None
    wait: timedelta | None = None
    reason: str = ""
    open_until: datetime | None = None
    failures: int = 0


class ProviderGate:
    """Admissions, pauses and breaker state of every provider, over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def admit(self, provider: str, tokens: int, limits: Windows) -> Admission:
        """Let one call through now, or say how long to wait (or that the breaker is open)."""
        async with self.engine.begin() as db:
            if limits.counted:
                await db.execute(_LOCK, {"p": provider})
            state = (await db.execute(_STATE, {"p": provider})).one()
            now: datetime = state.now
            if state.open_until is not None and state.open_until > now:
                return Admission(open_until=state.open_until)
            if state.paused_until is not None and state.paused_until > now:
                return Admission(wait=state.paused_until - now,
                                 reason="the provider asked to slow down (429 Retry-After)")
            if not limits.counted:
                return Admission(failures=state.failures or 0)
            wait, reason = await self._over(db, provider, tokens, limits, now)
            if wait is not None:
                return Admission(wait=wait, reason=reason)
            grant = int((await db.execute(_GRANT, {"p": provider, "tokens": tokens})).scalar_one())
            if grant % 200 == 0:
                await db.execute(_PRUNE, {"p": provider, "keep": now - KEEP,
                                          "stale": now - STALE_IN_FLIGHT})
            return Admission(grant=grant, failures=state.failures or 0)

    async def _over(self, db: Any, provider: str, tokens: int, limits: Windows,
                    now: datetime) -> tuple[timedelta | None, str]:
        second = timedelta(seconds=1) + limits.margin
        minute = timedelta(minutes=1) + limits.margin
        # A call's request reaches the provider after its grant and before its answer: a call
        # still in flight, or answered within the window, may share a second at the provider
        # with the next one, whatever the jitter. Only calls answered before it are clear.
        row = (await db.execute(_WINDOWS, {"p": provider, "now": now, "second": now - second,
                                           "minute": now - minute,
                                           "stale": now - STALE_IN_FLIGHT})).one()
        if limits.per_second is not None and row.in_second >= limits.per_second:
            return row.first_in_second + second - now, f"{limits.per_second:g} requests/second"
        if limits.per_minute is not None and row.in_minute >= limits.per_minute:
            return row.first_in_minute + minute - now, f"{limits.per_minute} requests/minute"
        if (limits.tokens_per_minute is not None and row.tokens_in_minute
                and row.tokens_in_minute + tokens > limits.tokens_per_minute):
            return (row.first_in_minute + minute - now,
                    f"{limits.tokens_per_minute} tokens/minute")
        if limits.concurrent is not None and row.in_flight >= limits.concurrent:
            return timedelta(milliseconds=100), f"{limits.concurrent} calls in flight"
        return None, ""

    async def release(self, grant: int) -> None:
        """The granted call ended: it no longer counts as in flight."""
        async with self.engine.begin() as db:
            await db.execute(_RELEASE, {"id": grant})

    async def pause(self, provider: str, wait: timedelta) -> None:
        """Every run waits ``wait`` before its next call to ``provider`` (a 429's Retry-After)."""
        async with self.engine.begin() as db:
            await db.execute(_PAUSE, {"p": provider, "wait": wait})

    async def failed(self, provider: str, threshold: int, open_for: timedelta) -> bool:
        """Count a failure in a row; at ``threshold`` the breaker opens. True if it opened."""
        async with self.engine.begin() as db:
            failures = int((await db.execute(_FAILED, {"p": provider})).scalar_one())
            if failures < threshold:
                return False
            await db.execute(_OPEN, {"p": provider, "open": open_for})
            return True

    async def succeeded(self, provider: str) -> None:
        """A call answered: the failures in a row start again from zero."""
        async with self.engine.begin() as db:
            await db.execute(_SUCCEEDED, {"p": provider})
