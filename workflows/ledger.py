"""The run's budget ledger: spend is reserved before it happens, so fan-out cannot overspend.

Every model call reserves its worst case before it starts and settles at what it actually
spent; a map batch or a child run is granted a slice up front (its own ledger's limit) and
returns what it did not spend when it ends. Parallel branches, map items of one batch and the
models of one step all draw from the same ledger, so the spend of a run and everything under
it never passes ``maxCostUsd`` whatever the concurrency. A reservation that does not fit waits
for those in flight to settle and is refused only when none is left. The ledger is workflow
state: a replay after a crash rebuilds it from the history, reservations included.
Deterministic.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from temporalio import workflow

# Float sums of prices drift by ulps; never refuse a reservation over that.
_SLACK = 1e-12


class BudgetRefused(Exception):
    """A reservation that cannot fit, now that nothing in flight can give budget back."""

    def __init__(self, wanted: float, available: float) -> None:
        super().__init__(f"wanted ${wanted:.6f}, ${available:.6f} left")
        self.wanted, self.available = wanted, available


@dataclass
class Reservation:
    """Budget held for work in flight; ``amount`` is the most that work may spend."""

    ticket: int
    amount: float


@dataclass
class BudgetLedger:
    """What one workflow (a run, or a map batch) may still spend, with what is held."""

    limit: float
    settled: float = 0.0
    held: dict[int, float] = field(default_factory=dict)
    _tickets: itertools.count[int] = field(default_factory=itertools.count)
    _changes: int = 0

    def available(self) -> float:
        """Budget neither spent nor held by work in flight."""
        return self.limit - self.settled - sum(self.held.values())

    async def reserve(self, amount: float, *, up_to: float | None = None) -> Reservation:
        """Hold ``amount`` (and as much more as fits, up to ``up_to``); waits while work in
        flight may still give budget back; raises ``BudgetRefused`` when it cannot fit."""
        while amount > self.available() + _SLACK:
            if not self.held:
                raise BudgetRefused(amount, max(self.available(), 0.0))
            await self._changed()
        if up_to is not None:
            amount = max(amount, min(up_to, self.available()))
        return self._hold(amount)

    async def grant(self, share: int) -> Reservation:
        """Hold a slice for a map batch or a child run: the available budget divided by
        ``share`` (the slices that may be in flight at once). With nothing available it
        waits for work in flight to settle; a zero slice is granted when none is left."""
        while self.available() <= _SLACK and self.held:
            await self._changed()
        return self._hold(max(self.available(), 0.0) / max(share, 1))

    def settle(self, reservation: Reservation, spent: float) -> None:
        """Release a reservation, recording what the work actually spent."""
        if self.held.pop(reservation.ticket, None) is None:
            return
        self.settled += max(spent, 0.0)
        self._changes += 1

    def _hold(self, amount: float) -> Reservation:
        ticket = next(self._tickets)
        self.held[ticket] = amount
        return Reservation(ticket=ticket, amount=amount)

    async def _changed(self) -> None:
        seen = self._changes
        await workflow.wait_condition(lambda: self._changes != seen)


def ledger_for(max_cost_usd: float | None) -> BudgetLedger | None:
    """A ledger over ``max_cost_usd``, or None for a run without a budget."""
    return None if max_cost_usd is None else BudgetLedger(limit=max_cost_usd)
