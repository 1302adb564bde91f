"""One Temporal Schedule per `scheduled` trigger, and the next fire times of its config.

The schedule's action starts the small triggered-start workflow with the trigger's id only:
the definition is resolved by version policy when it fires, never copied into the schedule.
"""

from __future__ import annotations

import contextlib
import math
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from schema.problems import Problem, pointer
from schema.run_priority import scheduled_priority
from schema.search_attributes import SA_ENVIRONMENT, SA_TRIGGER
from schema.triggers import OverlapPolicy, ScheduleConfig, TriggeredStart
from schema.workflow_names import TRIGGERED_START_WORKFLOW

OVERLAP: dict[OverlapPolicy, ScheduleOverlapPolicy] = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate_other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
}


def schedule_id(trigger_id: str) -> str:
    """The Temporal Schedule id of a trigger (as the Temporal UI's schedule view shows it)."""
    return f"pp-trigger-{trigger_id}"


def config_problems(config: ScheduleConfig) -> list[Problem]:
    """Cron expressions and time zones that would not fire as written."""
    problems = []
    for index, expr in enumerate(config.cron_expressions):
        if len(expr.split()) != 5 or not croniter.is_valid(expr):
            problems.append(Problem(pointer=pointer("config", "cronExpressions", index),
                                    field="cronExpressions",
                                    message=f"'{expr}' is not a 5-field cron expression"))
        elif _UNPORTABLE.search(_NAMES.sub("", expr)):
            problems.append(Problem(pointer=pointer("config", "cronExpressions", index),
                                    field="cronExpressions", message=(
                                        f"'{expr}' uses L, W, ? or #, which Temporal schedules "
                                        "do not read: write the days out (e.g. 1-7 for the "
                                        "first week)")))
        elif _never_fires(expr):
            problems.append(Problem(pointer=pointer("config", "cronExpressions", index),
                                    field="cronExpressions", message=(
                                        f"'{expr}' never fires (a day of month and a day of "
                                        "week given together must both match)")))
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem(pointer=pointer("config", "timezone"), field="timezone",
                                message=f"unknown IANA time zone '{config.timezone}'"))
    return problems


# Month and weekday names (JUL, WED) hold L and W: taken out before looking for the
# croniter extensions Temporal refuses (L, W, ?) or silently misreads (MON#2: every Monday).
_NAMES = re.compile(r"\b(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|"
                    r"FRI|SAT)\b", re.IGNORECASE)
_UNPORTABLE = re.compile(r"[LW?#]", re.IGNORECASE)


def _never_fires(expr: str) -> bool:
    try:
        croniter(expr, datetime(2000, 1, 1), day_or=False).get_next(datetime)
    except CroniterBadDateError:
        return True
    return False


def _instants(local: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants a local wall-clock time names: none inside a spring-forward gap,
    two inside a fall-back hour (Temporal fires both, checked on the dev server), else one."""
    found: list[datetime] = []
    for fold in (0, 1):
        placed = local.replace(tzinfo=zone, fold=fold)
        instant = placed.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == local and instant not in found:
            found.append(instant)
    return found


def _cron_times(expr: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    # Walk local wall-clock times, then place them in the zone. A fall-back hour's second
    # instants come up to an hour after their first: walk on until no later local time can
    # fire before the `count`-th time found.
    start = after.astimezone(zone).replace(tzinfo=None)
    # Temporal matches every field (day of month AND day of week), not cron's either-or.
    walker = croniter(expr, start, day_or=False)
    times: list[datetime] = []
    while True:
        try:
            local: datetime = walker.get_next(datetime)
        except CroniterBadDateError:  # a stored expression that never fires (again)
            return times[:count]
        instants = _instants(local, zone)
        if len(times) >= count and instants and instants[0] > times[count - 1]:
            return times[:count]
        times = sorted(times + [t for t in instants if t > after])


def _interval_times(every: float, offset: float, after: datetime, count: int) -> list[datetime]:
    # Temporal aligns intervals to the Unix epoch plus the offset.
    base = after.timestamp()
    first = math.floor((base - offset) / every) * every + offset
    if first <= base:
        first += every
    return [datetime.fromtimestamp(first + i * every, UTC) for i in range(count)]


def next_fire_times(config: ScheduleConfig, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` nominal fire times after `after` (UTC; jitter not applied)."""
    zone = ZoneInfo(config.timezone)
    times: set[datetime] = set()
    for expr in config.cron_expressions:
        times.update(_cron_times(expr, zone, after, count))
    for interval in config.intervals:
        times.update(_interval_times(interval.every_seconds, interval.offset_seconds, after,
                                     count))
    return sorted(times)[:count]


def build_schedule(trigger_id: str, environment: str, config: ScheduleConfig, *,
                   task_queue: str, paused: bool, note: str | None = None,
                   summary: str | None = None) -> Schedule:
    """The Temporal Schedule for a trigger: ids in the action, the policy from the config;
    `summary` labels its launcher workflows in the Temporal UI (the trigger and workflow)."""
    action = ScheduleActionStartWorkflow(
        TRIGGERED_START_WORKFLOW,
        TriggeredStart(trigger_id=trigger_id, environment=environment, trigger="scheduled"),
        id=f"pp-sched-{trigger_id}",
        task_queue=task_queue,
        typed_search_attributes=TypedSearchAttributes([
            SearchAttributePair(SA_ENVIRONMENT, environment),
            SearchAttributePair(SA_TRIGGER, "scheduled"),
        ]),
        static_summary=summary or f"trigger {trigger_id}",
        priority=scheduled_priority(trigger_id),
    )
    spec = ScheduleSpec(
        cron_expressions=list(config.cron_expressions),
        intervals=[ScheduleIntervalSpec(every=timedelta(seconds=i.every_seconds),
                                        offset=timedelta(seconds=i.offset_seconds))
                   for i in config.intervals],
        time_zone_name=config.timezone,
        jitter=timedelta(seconds=config.jitter_seconds) if config.jitter_seconds else None,
    )
    policy = SchedulePolicy(overlap=OVERLAP[config.overlap_policy],
                            catchup_window=timedelta(seconds=config.catchup_window_seconds))
    return Schedule(action=action, spec=spec, policy=policy,
                    state=ScheduleState(paused=paused, note=note))


class Schedules:
    """Schedule operations in one environment's namespace."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def handle(self, trigger_id: str) -> ScheduleHandle:
        """The schedule of a trigger."""
        return self._client.get_schedule_handle(schedule_id(trigger_id))

    async def create(self, schedule: Schedule, trigger_id: str) -> None:
        """Create the trigger's schedule."""
        await self._client.create_schedule(schedule_id(trigger_id), schedule)

    async def replace(self, schedule: Schedule, trigger_id: str) -> None:
        """Swap spec, policy and action; keep the paused state Temporal holds. A schedule
        Temporal no longer has (deleted in the Temporal UI) is made again as given."""
        def updater(current: ScheduleUpdateInput) -> ScheduleUpdate:
            state = current.description.schedule.state
            schedule.state = ScheduleState(paused=state.paused, note=state.note)
            return ScheduleUpdate(schedule=schedule)

        try:
            await self.handle(trigger_id).update(updater)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await self.restore(schedule, trigger_id)

    async def restore(self, schedule: Schedule, trigger_id: str) -> None:
        """Make a schedule Temporal has lost again (another request may just have)."""
        with contextlib.suppress(ScheduleAlreadyRunningError):
            await self.create(schedule, trigger_id)

    async def delete(self, trigger_id: str) -> None:
        """Delete the schedule (running actions carry on)."""
        await self.handle(trigger_id).delete()
