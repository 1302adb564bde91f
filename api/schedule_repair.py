"""Every scheduled trigger keeps its Temporal schedule: the trigger row is what the user set,
and a schedule Temporal no longer has (deleted in the Temporal UI or CLI) is made again from
it, paused as the trigger says, every ``reconcile.schedule_seconds``. The trigger's next
change or control makes it again at once too (``Schedules.replace`` and the schedule routes);
this sweep covers the trigger nobody touches, whose schedule would otherwise never fire."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.service import RPCError, RPCStatusCode

from api.schedules import schedule_id
from api.state import AppState
from api.trigger_views import restore_schedule, schedules, triggers
from store.columns import utcnow
from store.trigger_tables import TriggerRow

log = logging.getLogger("promptpilot.api")
SETTLING_SECONDS = 30.0
"""A trigger created or changed this recently is left alone: a request may be making its
schedule right now."""


class ScheduleRepair:
    """The API's sweep for lost schedules (several API processes may sweep: a schedule made by
    another meanwhile is left as it is)."""

    def __init__(self, state: AppState) -> None:
        self._state = state

    async def run_forever(self) -> None:
        """Sweep every ``reconcile.schedule_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self._state.settings.reconcile.schedule_seconds)
            try:
                await self.sweep()
            except Exception as exc:  # Postgres or Temporal away: the next sweep tries again
                log.warning("schedule repair: sweep failed (%s)", type(exc).__name__)

    async def sweep(self) -> list[str]:
        """Make every lost schedule again; the ids of the triggers whose schedule it made."""
        by_environment: dict[str, list[TriggerRow]] = defaultdict(list)
        for row in await triggers(self._state).scheduled():
            by_environment[row.environment].append(row)
        made: list[str] = []
        for environment, rows in by_environment.items():
            try:
                made += await self._repair(environment, rows)
            except RPCError as exc:  # that namespace is away; the others still get theirs
                log.warning("schedule repair: environment %s: %s", environment, exc.message)
        return made

    async def _repair(self, environment: str, rows: list[TriggerRow]) -> list[str]:
        # A trigger changed a moment ago is left to the request that may be making it.
        settled = utcnow() - timedelta(seconds=SETTLING_SECONDS)
        rows = [row for row in rows if row.updated_at <= settled]
        if not rows:
            return []
        ops = await schedules(self._state, environment)
        client = await self._state.temporal(environment)
        listed = {entry.id async for entry in await client.list_schedules()}
        made = []
        for row in rows:
            if schedule_id(str(row.id)) in listed:
                continue
            # Listing is eventually consistent: a schedule made a moment ago may not show yet.
            try:
                await ops.handle(str(row.id)).describe()
                continue
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            try:
                await restore_schedule(self._state, row)
            except Exception as exc:  # a config that no longer reads: that trigger waits
                log.warning("schedule repair: trigger %s: not made again (%s)", row.id,
                            getattr(exc, "message", type(exc).__name__))
                continue
            if await triggers(self._state).get(row.id) is None:
                # Deleted while this sweep made its schedule: take that schedule away too.
                with contextlib.suppress(RPCError):
                    await ops.delete(str(row.id))
                continue
            log.info("schedule repair: trigger %s had no schedule in Temporal; made again",
                     row.id)
            made.append(str(row.id))
        return made


@contextlib.asynccontextmanager
async def repairing_schedules(state: AppState) -> AsyncIterator[ScheduleRepair]:
    """The sweep running in the background for as long as the block."""
    repair = ScheduleRepair(state)
    sweeping = asyncio.create_task(repair.run_forever(), name="schedule-repair")
    try:
        yield repair
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
