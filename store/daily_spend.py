"""Daily spend limits across every run and worker: a call holds its worst case against each of
its scopes' limits for today (UTC, the database's clock) before it is made, and settles at what
it was billed. A hold that does not fit is refused; holds of calls lost with their worker stay
counted until the day ends (never an overspend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_HOLD = text("""
INSERT INTO daily_spend AS d (scope, day, spent_usd, held_usd)
VALUES (:scope, (clock_timestamp() AT TIME ZONE 'UTC')::date, 0, :amount)
ON CONFLICT (scope, day) DO UPDATE SET held_usd = d.held_usd + EXCLUDED.held_usd
  WHERE d.spent_usd + d.held_usd + EXCLUDED.held_usd <= :limit
RETURNING day
""")
_SPENT = text("SELECT spent_usd, held_usd FROM daily_spend WHERE scope = :scope "
              "AND day = (clock_timestamp() AT TIME ZONE 'UTC')::date")
_SETTLE = text("UPDATE daily_spend SET held_usd = greatest(held_usd - :held, 0), "
               "spent_usd = spent_usd + :spent WHERE scope = :scope AND day = :day")


@dataclass(frozen=True)
class DailyLimit:
    """One scope's limit for a day: ``scope`` names it (and says whose it is)."""

    scope: str
    limit_usd: float


@dataclass(frozen=True)
class DailyHold:
    """What a call holds in each scope, for the day it was taken on."""

    holds: tuple[tuple[str, object], ...]
    amount: float


class DailyRefused(Exception):
    """A call's worst case does not fit a scope's daily limit."""

    def __init__(self, limit: DailyLimit, spent: float, held: float) -> None:
        super().__init__(limit.scope)
        self.limit, self.spent, self.held = limit, spent, held


class DailySpend:
    """Holds and settles calls against daily limits, over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def hold(self, limits: Sequence[DailyLimit], amount: float) -> DailyHold:
        """Hold ``amount`` in every scope, all or none; raises ``DailyRefused``."""
        async with self.engine.begin() as db:
            holds: list[tuple[str, object]] = []
            for limit in limits:
                day = (await db.execute(_HOLD, {"scope": limit.scope, "amount": amount,
                                                "limit": limit.limit_usd})).scalar_one_or_none()
                if day is None:
                    row = (await db.execute(_SPENT, {"scope": limit.scope})).one()
                    await db.rollback()  # the holds taken in the other scopes go too
                    raise DailyRefused(limit, row.spent_usd, row.held_usd)
                holds.append((limit.scope, day))
        return DailyHold(holds=tuple(holds), amount=amount)

    async def settle(self, hold: DailyHold, spent: float) -> None:
        """Release the hold, counting what the call was billed."""
        async with self.engine.begin() as db:
            for scope, day in hold.holds:
                await db.execute(_SETTLE, {"scope": scope, "day": day, "held": hold.amount,
                                           "spent": spent})
