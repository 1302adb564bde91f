"""Triggers under /api/triggers: CRUD and `execute`."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentKey, IdempotencyKey, StateDep
from api.errors import ApiError, not_found
from api.launcher import StartRequest, start_run
from api.state import AppState
from api.trigger_views import (
    checked_config,
    checked_version,
    load_trigger,
    metrics_of,
    schedule_of,
    schedule_state,
    schedules,
    trigger_public,
    triggers,
)
from api.webhook_signatures import new_secret
from api.workflow_lookup import load_workflow
from definition.limits import check_input_size
from schema.problems import Problem
from schema.triggers import (
    ExecuteRequest,
    TriggerCreate,
    TriggeredRun,
    TriggerEnvelope,
    TriggerListEnvelope,
    TriggerUpdate,
)
from store.keys import digest
from store.trigger_tables import TriggerRow
from store.triggers import VersionUnavailable

router = APIRouter(prefix="/api/triggers", tags=["triggers"])
TRIGGER_KEY_PREFIX = "ppt_"
_bearer = HTTPBearer(auto_error=False)
# Types whose stored input is the whole run input, so it can be checked when saved.
_STATIC_INPUT = {"manual", "scheduled", "api"}


@router.post("", status_code=201, response_model=TriggerEnvelope)
async def create_trigger(body: TriggerCreate, state: StateDep, key: CurrentKey) -> TriggerEnvelope:
    """Create a trigger; an `api` key or `webhook` secret is in this response only."""
    check_input_size(body.input, state.settings.limits)
    workflow, _ = await load_workflow(state, key.environment, body.workflow_slug)
    row = TriggerRow(environment=key.environment, workflow_id=workflow.id, name=body.name,
                     type=body.type, enabled=body.enabled, input_json=body.input,
                     config=await checked_config(state, key.environment, body.type, body.config),
                     version_policy=body.version_policy, pinned_version=body.pinned_version)
    await checked_version(state, row, workflow, body.type in _STATIC_INPUT)
    shown: dict[str, str] = {}
    if body.type == "api":
        shown["api_key"] = f"{TRIGGER_KEY_PREFIX}{secrets.token_urlsafe(32)}"
        row.api_key_hash = digest(shown["api_key"])
    if body.type == "webhook":
        shown["webhook_secret"] = row.webhook_secret = new_secret()
    await triggers(state).create(row)
    if body.type == "scheduled":
        try:
            await (await schedules(state, key.environment)).create(
                schedule_of(row, state, workflow.slug), str(row.id))
        except BaseException as exc:  # cancelled too: nothing half-written
            await asyncio.shield(_unmake(state, row))
            if isinstance(exc, RPCError | RuntimeError):
                raise _schedule_refused(exc, "create") from exc
            raise
    return TriggerEnvelope(trigger=trigger_public(row, workflow.slug, **shown))


async def _unmake(state: AppState, row: TriggerRow) -> None:
    """Undo a scheduled trigger whose schedule was not made (or not surely: its answer may
    have been lost), so neither a trigger that never fires nor a schedule without one stays."""
    with contextlib.suppress(RPCError):
        await (await schedules(state, row.environment)).delete(str(row.id))
    await triggers(state).delete(row.id)


def _schedule_refused(exc: Exception, doing: str) -> ApiError:
    """Temporal refusing the schedule's spec is the config's fault (422); else a 503."""
    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.INVALID_ARGUMENT:
        message = f"Temporal refused the schedule: {exc.message}"
        return ApiError(422, "validation_error", message,
                        [Problem(pointer="/config", field="config", message=message)])
    return ApiError(503, "temporal_unavailable", f"could not {doing} the schedule: {exc}")


@router.get("", response_model=TriggerListEnvelope)
async def list_triggers(state: StateDep, key: CurrentKey,
                        workflow_slug: Annotated[str | None, Query(alias="workflowSlug")] = None,
                        ) -> TriggerListEnvelope:
    """Triggers of the key's environment, optionally of one workflow."""
    workflow_id = None
    if workflow_slug:
        workflow_id = (await load_workflow(state, key.environment, workflow_slug))[0].id
    rows = await triggers(state).list(key.environment, workflow_id)
    slugs = {w.id: w.slug for w in await state.store.list_workflows(key.environment)}
    return TriggerListEnvelope(triggers=[trigger_public(r, slugs.get(r.workflow_id))
                                         for r in rows])


@router.get("/{trigger_id}", response_model=TriggerEnvelope)
async def get_trigger(
    trigger_id: uuid.UUID, state: StateDep, key: CurrentKey,
    next_fires: Annotated[int, Query(alias="nextFireTimes", ge=1, le=100)] = 5,
    last_runs: Annotated[int, Query(alias="lastRuns", ge=1, le=200)] = 10,
) -> TriggerEnvelope:
    """A trigger with its execution metrics and, when scheduled, its schedule's state."""
    row = await load_trigger(state, key.environment, trigger_id)
    workflow = await state.store.get_workflow_by_id(row.workflow_id)
    schedule = await schedule_state(state, row, next_fires) if row.type == "scheduled" else None
    return TriggerEnvelope(trigger=trigger_public(
        row, workflow.slug if workflow else None, schedule=schedule,
        metrics=await metrics_of(state, row, last_runs)))


@router.put("/{trigger_id}", response_model=TriggerEnvelope)
async def update_trigger(trigger_id: uuid.UUID, body: TriggerUpdate, state: StateDep,
                         key: CurrentKey) -> TriggerEnvelope:
    """Change a trigger; a scheduled trigger's schedule follows (its pause state is kept)."""
    row = await load_trigger(state, key.environment, trigger_id)
    workflow = await state.store.get_workflow_by_id(row.workflow_id)
    if workflow is None:
        raise not_found(f"workflow of trigger '{trigger_id}'")
    was_enabled = row.enabled
    for field in ("name", "enabled", "version_policy", "pinned_version"):
        if (value := getattr(body, field)) is not None:
            setattr(row, field, value)
    if body.input is not None:
        check_input_size(body.input, state.settings.limits)
        row.input_json = body.input
    if body.config is not None:
        row.config = await checked_config(state, key.environment, row.type, body.config)
    await checked_version(state, row, workflow, row.type in _STATIC_INPUT)
    if row.type == "scheduled":
        ops = await schedules(state, key.environment)
        try:
            await ops.replace(schedule_of(row, state, workflow.slug), str(row.id))
            if was_enabled != row.enabled:
                handle = ops.handle(str(row.id))
                await (handle.unpause(note="trigger enabled") if row.enabled
                       else handle.pause(note="trigger disabled"))
        except (RPCError, RuntimeError) as exc:
            raise _schedule_refused(exc, "update") from exc
    row = await triggers(state).save(row)
    return TriggerEnvelope(trigger=trigger_public(row, workflow.slug))


@router.delete("/{trigger_id}", status_code=204)
async def delete_trigger(trigger_id: uuid.UUID, state: StateDep, key: CurrentKey) -> Response:
    """Delete a trigger and its schedule; its runs stay, still naming the trigger id."""
    row = await load_trigger(state, key.environment, trigger_id)
    if row.type == "scheduled":
        try:
            await (await schedules(state, key.environment)).delete(str(row.id))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise ApiError(503, "temporal_unavailable",
                               f"could not delete the schedule: {exc}") from exc
    await triggers(state).delete(row.id)
    return Response(status_code=204)


async def _caller(
    trigger_id: uuid.UUID, state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[TriggerRow, str]:
    """The trigger and the run's trigger label, after checking the presented key."""
    token = credentials.credentials if credentials else ""
    if not token:
        raise ApiError(401, "unauthorized", "missing key: send 'Authorization: Bearer <key>'")
    if token.startswith(TRIGGER_KEY_PREFIX):
        row = await triggers(state).by_api_key(digest(token))
        if row is None or row.id != trigger_id:
            raise ApiError(401, "unauthorized", "invalid key for this trigger")
        return row, "api"
    key = await state.keys.verify(token)
    if key is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    row = await load_trigger(state, key.environment, trigger_id)
    if row.type == "api":
        raise ApiError(403, "forbidden", "an api trigger is executed with its own key")
    return row, "manual"


@router.post("/{trigger_id}/execute", status_code=202, response_model=TriggeredRun)
async def execute_trigger(
    state: StateDep, caller: Annotated[tuple[TriggerRow, str], Depends(_caller)],
    idempotency_key: IdempotencyKey = None, body: ExecuteRequest | None = None,
) -> TriggeredRun:
    """Start a run now: with an environment key, or an api trigger's own key."""
    row, label = caller
    if not row.enabled:
        raise ApiError(409, "trigger_disabled", "the trigger is disabled")
    try:
        workflow, version = await triggers(state).resolve_version(row)
    except VersionUnavailable as exc:
        raise ApiError(409, "version_unavailable", str(exc)) from None
    run_input = body.input if body and body.input is not None else row.input_json or {}
    run_id = await start_run(state, StartRequest(
        environment=row.environment, workflow=workflow, version=version, input=run_input,
        trigger=label, trigger_id=str(row.id), idempotency_key=idempotency_key))
    run = await state.store.get_run(row.environment, uuid.UUID(run_id))
    return TriggeredRun(run_id=run_id, status=run.status if run else "pending",
                        trigger_id=str(row.id))
