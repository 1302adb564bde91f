"""Actions on one run: rerun it from a step, or cancel it through Temporal."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from temporalio.service import RPCError

from api.deps import CurrentKey, StateDep
from api.errors import ApiError, not_found
from api.launcher import start_run, wait_for
from api.presenters import run_public
from api.rerun import RerunAsk, plan_rerun
from api.routes.workflows import load_workflow
from api.state import AppState
from schema.api import RerunRequest, RunEnvelope
from schema.run import TERMINAL_RUN_STATUSES
from store.tables import RunRow

router = APIRouter(prefix="/api/workflows/runs", tags=["runs"])
Wait = Annotated[float | None, Query(ge=0, le=300, description="seconds to wait")]
_STILL_GOING: dict[int | str, dict[str, Any]] = {
    202: {"model": RunEnvelope, "description": "still running"}}


async def _run_or_404(state: AppState, environment: str, run_id: uuid.UUID) -> RunRow:
    run = await state.store.get_run(environment, run_id)
    if run is None:
        raise not_found(f"run '{run_id}'")
    return run


async def run_answer(state: AppState, environment: str, run_id: uuid.UUID,
                     response: Response) -> RunEnvelope:
    """The run with its steps; 202 while it is not finished."""
    run = await _run_or_404(state, environment, run_id)
    workflow = await state.store.get_workflow_by_id(run.workflow_id)
    if run.status not in TERMINAL_RUN_STATUSES:
        response.status_code = 202
    steps = await state.store.get_steps(run.id)
    return RunEnvelope(run=run_public(run, steps, workflow.slug if workflow else None))


@router.post("/{run_id}/rerun", response_model=RunEnvelope, responses=_STILL_GOING)
async def rerun(run_id: uuid.UUID, body: RerunRequest, response: Response, state: StateDep,
                key: CurrentKey, wait: Wait = None) -> RunEnvelope:
    """A new run that reuses this run's steps before `fromStepId` and runs the rest."""
    source = await _run_or_404(state, key.environment, run_id)
    workflow = await state.store.get_workflow_by_id(source.workflow_id)
    if workflow is None:
        raise not_found(f"workflow of run '{run_id}'")
    row, version = await load_workflow(state, key.environment, workflow.slug)
    request = await plan_rerun(state, key.environment, row, version, RerunAsk(
        from_step_id=body.from_step_id, input=body.input, step_overrides=body.step_overrides,
        pin_version=body.pin_version, max_cost_usd=body.max_cost_usd,
        source_run_id=str(source.id)))
    new_id = await start_run(state, request.ordered(body))
    seconds = state.settings.api.run_wait_seconds if wait is None else wait
    await wait_for(state, key.environment, new_id, seconds)
    return await run_answer(state, key.environment, uuid.UUID(new_id), response)


@router.post("/{run_id}/cancel", response_model=RunEnvelope, responses=_STILL_GOING)
async def cancel(run_id: uuid.UUID, response: Response, state: StateDep,
                 key: CurrentKey) -> RunEnvelope:
    """Cancel a run that is not finished, as Temporal sees it (a stalled run too): the step in
    flight is cancelled and no later step starts. A stalled run, or one still going after
    ``reconcile.cancel_grace_seconds``, is terminated and recorded `cancelled` with why."""
    await _run_or_404(state, key.environment, run_id)
    try:
        reconciler = await state.reconciler(key.environment)
        outcome = await reconciler.cancel(str(run_id), who=f"API key '{key.name}'")
    except (RPCError, RuntimeError, OSError) as exc:
        raise ApiError(503, "temporal_unavailable", f"could not cancel: {exc}") from exc
    if outcome in ("not_found", "finished"):
        run = await _run_or_404(state, key.environment, run_id)
        if run.status in TERMINAL_RUN_STATUSES:
            raise ApiError(409, "run_finished", f"run '{run_id}' is already {run.status}")
        raise ApiError(409, "run_not_running",
                       f"run '{run_id}' has no running workflow to cancel")
    return await run_answer(state, key.environment, run_id, response)
