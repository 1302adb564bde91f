"""Run detail: `GET /api/workflows/runs/{runId}` (seed 000)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import CurrentKey, StateDep
from api.errors import not_found
from api.presenters import run_public
from schema.api import RunEnvelope

router = APIRouter(prefix="/api/workflows/runs", tags=["runs"])


@router.get("/{run_id}", response_model=RunEnvelope)
async def get_run(run_id: uuid.UUID, state: StateDep, key: CurrentKey) -> RunEnvelope:
    """A run with its steps; runs of other environments are not found."""
    run = await state.store.get_run(key.environment, run_id)
    if run is None:
        raise not_found(f"run '{run_id}'")
    steps = await state.store.get_steps(run.id)
    workflow = await state.store.get_workflow_by_id(run.workflow_id)
    return RunEnvelope(run=run_public(run, steps, workflow.slug if workflow else None))
