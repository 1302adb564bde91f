"""Schedule controls of a `scheduled` trigger: pause, unpause, trigger now, backfill."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter
from temporalio.client import (
    ScheduleActionExecutionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentKey, StateDep
from api.errors import ApiError
from api.schedules import OVERLAP, next_fire_times
from api.state import AppState
from api.trigger_views import (
    load_trigger,
    restore_schedule,
    schedule_state,
    schedules,
    stored_schedule,
)
from schema.problems import Problem
from schema.triggers import BackfillRequest, PauseRequest, ScheduleState
from store.trigger_tables import TriggerRow
from workflows.triggered import run_id_for

router = APIRouter(prefix="/api/triggers", tags=["triggers"])
T = TypeVar("T")
TRIGGER_NOW_WAIT_SECONDS = 5.0
"""How long "trigger now" waits for the schedule to show the start it asked for."""


async def _scheduled(state: AppState, environment: str, trigger_id: uuid.UUID) -> TriggerRow:
    row = await load_trigger(state, environment, trigger_id)
    if row.type != "scheduled":
        raise ApiError(409, "not_scheduled", f"trigger '{trigger_id}' is a {row.type} trigger, "
                       "not a scheduled one")
    if not row.enabled:
        raise ApiError(409, "trigger_disabled", "the trigger is disabled: enable it first")
    return row


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(503, "temporal_unavailable", f"the schedule did not answer: {exc}")


async def _on_schedule(state: AppState, row: TriggerRow,
                       act: Callable[[ScheduleHandle], Awaitable[T]]) -> T:
    """`act` on the trigger's schedule; a schedule Temporal has lost (deleted in the Temporal
    UI) is made again from the trigger first. Temporal's other refusals are left to `act`'s
    caller (RPCError)."""
    handle = (await schedules(state, row.environment)).handle(str(row.id))
    try:
        return await act(handle)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    await restore_schedule(state, row)
    return await act(handle)


async def _state(state: AppState, row: TriggerRow) -> dict[str, Any]:
    schedule: ScheduleState = await schedule_state(state, row, 5)
    return {"success": True, "schedule": schedule.model_dump(mode="json")}


@router.post("/{trigger_id}/pause")
async def pause(trigger_id: uuid.UUID, state: StateDep, key: CurrentKey,
                body: PauseRequest | None = None) -> dict[str, Any]:
    """Pause the schedule with a note (shown in the Temporal UI)."""
    row = await _scheduled(state, key.environment, trigger_id)
    note = (body.note if body else None) or "paused through the API"
    try:
        await _on_schedule(state, row, lambda handle: handle.pause(note=note))
    except RPCError as exc:
        raise _unavailable(exc) from exc
    return await _state(state, row)


@router.post("/{trigger_id}/unpause")
async def unpause(trigger_id: uuid.UUID, state: StateDep, key: CurrentKey,
                  body: PauseRequest | None = None) -> dict[str, Any]:
    """Resume the schedule with a note."""
    row = await _scheduled(state, key.environment, trigger_id)
    note = (body.note if body else None) or "unpaused through the API"
    try:
        await _on_schedule(state, row, lambda handle: handle.unpause(note=note))
    except RPCError as exc:
        raise _unavailable(exc) from exc
    return await _state(state, row)


@router.post("/{trigger_id}/trigger", status_code=202)
async def trigger_now(trigger_id: uuid.UUID, state: StateDep,
                      key: CurrentKey) -> dict[str, Any]:
    """Fire the schedule's action once now (even while paused; overlap: allow all); `runId`
    is the run it started (null if Temporal had not started it within a few seconds)."""
    row = await _scheduled(state, key.environment, trigger_id)

    async def fire(handle: ScheduleHandle) -> str | None:
        before = _started(await handle.describe())
        await handle.trigger(overlap=OVERLAP["allow_all"])
        return await _new_start(handle, before)

    try:
        launcher = await _on_schedule(state, row, fire)
    except RPCError as exc:
        raise _unavailable(exc) from exc
    return {**await _state(state, row),
            "runId": run_id_for(launcher) if launcher is not None else None}


def _started(described: ScheduleDescription) -> set[str]:
    """The launcher workflow ids of the schedule's recent actions."""
    return {a.action.workflow_id for a in described.info.recent_actions
            if isinstance(a.action, ScheduleActionExecutionStartWorkflow)}


async def _new_start(handle: ScheduleHandle, before: set[str]) -> str | None:
    """The launcher the trigger started: the schedule takes a trigger asynchronously, so its
    action shows in the description a moment later (a fire of its own at the same moment
    could be taken for it; the run ids of both are in the trigger's runs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRIGGER_NOW_WAIT_SECONDS
    while loop.time() < deadline:
        if new := _started(await handle.describe()) - before:
            return min(new)
        await asyncio.sleep(0.05)
    return None


def _check_backfill_size(row: TriggerRow, body: BackfillRequest, limit: int) -> None:
    """422 when the range holds more fires than a backfill may start: every one is a run,
    all at once (a yearly schedule over the years 1-9999 is ten thousand)."""
    config = stored_schedule(row)
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (body.start_at, body.end_at))
    try:
        fires = next_fire_times(config, start - timedelta(microseconds=1), limit + 1)
    except (OverflowError, ValueError):
        return  # the fires run past the year 9999 before there are `limit` of them
    if len(fires) > limit and fires[limit] < end:
        message = (f"the schedule fires more than {limit:,} times from startAt to endAt, and a "
                   "backfill starts every one (PROMPTPILOT_LIMITS__MAX_BACKFILL_RUNS): "
                   "backfill a shorter range")
        raise ApiError(422, "backfill_too_large", message,
                       [Problem(pointer="/endAt", field="endAt", message=message)])


@router.post("/{trigger_id}/backfill", status_code=202)
async def backfill(trigger_id: uuid.UUID, body: BackfillRequest, state: StateDep,
                   key: CurrentKey) -> dict[str, Any]:
    """Fire every action the spec would have fired in [startAt, endAt)."""
    if body.end_at <= body.start_at:
        raise ApiError(422, "validation_error", "endAt must be after startAt",
                       [Problem(pointer="/endAt", field="endAt", message="must be after startAt")])
    row = await _scheduled(state, key.environment, trigger_id)
    _check_backfill_size(row, body, state.settings.limits.max_backfill_runs)
    try:
        await _on_schedule(state, row, lambda handle: handle.backfill(ScheduleBackfill(
            start_at=body.start_at, end_at=body.end_at, overlap=OVERLAP[body.overlap_policy])))
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:  # a range Temporal cannot take
            raise ApiError(422, "validation_error", f"Temporal refused the backfill: "
                           f"{exc.message}", [Problem(pointer="/startAt", field="startAt",
                                                     message=exc.message)]) from exc
        raise _unavailable(exc) from exc
    return await _state(state, row)
