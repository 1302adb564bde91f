"""Schedule controls of a `scheduled` trigger: pause, unpause, trigger now, backfill."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, timedelta
from typing import Any

from fastapi import APIRouter
from temporalio.client import (
    ScheduleActionExecutionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentKey, StateDep
from api.errors import ApiError
from api.schedules import OVERLAP, next_fire_times
from api.state import AppState
from api.trigger_views import load_trigger, schedule_state, schedules
from schema.problems import Problem
from schema.triggers import BackfillRequest, PauseRequest, ScheduleConfig, ScheduleState
from store.trigger_tables import TriggerRow
from workflows.triggered import run_id_for

router = APIRouter(prefix="/api/triggers", tags=["triggers"])
TRIGGER_NOW_WAIT_SECONDS = 5.0
"""How long "trigger now" waits for the schedule to show the start it asked for."""


async def _scheduled(state: AppState, environment: str,
                     trigger_id: uuid.UUID) -> tuple[TriggerRow, ScheduleHandle]:
    row = await load_trigger(state, environment, trigger_id)
    if row.type != "scheduled":
        raise ApiError(409, "not_scheduled", f"trigger '{trigger_id}' is a {row.type} trigger, "
                       "not a scheduled one")
    if not row.enabled:
        raise ApiError(409, "trigger_disabled", "the trigger is disabled: enable it first")
    return row, (await schedules(state, environment)).handle(str(row.id))


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(503, "temporal_unavailable", f"the schedule did not answer: {exc}")


async def _state(state: AppState, row: TriggerRow) -> dict[str, Any]:
    schedule: ScheduleState = await schedule_state(state, row, 5)
    return {"success": True, "schedule": schedule.model_dump(mode="json")}


@router.post("/{trigger_id}/pause")
async def pause(trigger_id: uuid.UUID, state: StateDep, key: CurrentKey,
                body: PauseRequest | None = None) -> dict[str, Any]:
    """Pause the schedule with a note (shown in the Temporal UI)."""
    row, handle = await _scheduled(state, key.environment, trigger_id)
    try:
        await handle.pause(note=(body.note if body else None) or "paused through the API")
    except RPCError as exc:
        raise _unavailable(exc) from exc
    return await _state(state, row)


@router.post("/{trigger_id}/unpause")
async def unpause(trigger_id: uuid.UUID, state: StateDep, key: CurrentKey,
                  body: PauseRequest | None = None) -> dict[str, Any]:
    """Resume the schedule with a note."""
    row, handle = await _scheduled(state, key.environment, trigger_id)
    try:
        await handle.unpause(note=(body.note if body else None) or "unpaused through the API")
    except RPCError as exc:
        raise _unavailable(exc) from exc
    return await _state(state, row)


@router.post("/{trigger_id}/trigger", status_code=202)
async def trigger_now(trigger_id: uuid.UUID, state: StateDep,
                      key: CurrentKey) -> dict[str, Any]:
    """Fire the schedule's action once now (even while paused; overlap: allow all); `runId`
    is the run it started (null if Temporal had not started it within a few seconds)."""
    row, handle = await _scheduled(state, key.environment, trigger_id)
    try:
        before = _started(await handle.describe())
        await handle.trigger(overlap=OVERLAP["allow_all"])
        launcher = await _new_start(handle, before)
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
    config = ScheduleConfig.model_validate(row.config)
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
    row, _ = await _scheduled(state, key.environment, trigger_id)
    _check_backfill_size(row, body, state.settings.limits.max_backfill_runs)
    try:
        await (await schedules(state, key.environment)).backfill(
            str(row.id), body.start_at, body.end_at, body.overlap_policy)
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:  # a range Temporal cannot take
            raise ApiError(422, "validation_error", f"Temporal refused the backfill: "
                           f"{exc.message}", [Problem(pointer="/startAt", field="startAt",
                                                     message=exc.message)]) from exc
        raise _unavailable(exc) from exc
    return await _state(state, row)
