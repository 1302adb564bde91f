"""Runs across workflows: `GET /api/workflows/runs` and the detail `/runs/{runId}`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from temporalio.service import RPCError

from api.deps import CurrentKey, StateDep
from api.errors import not_found
from api.presenters import run_public
from api.routes.workflows import STATUS_FILTER, _decode_cursor, encode_cursor
from api.run_diff import run_diff
from api.state import AppState
from api.workflow_lookup import find_workflow
from schema.api import RunEnvelope, RunListEnvelope
from schema.bounds import IsoDateTime
from schema.run import TERMINAL_RUN_STATUSES
from schema.run_diff import RunDiffEnvelope
from store.tables import RunRow

router = APIRouter(prefix="/api/workflows/runs", tags=["runs"])


@router.get("", response_model=RunListEnvelope)
async def list_all_runs(
    state: StateDep, key: CurrentKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    status: Annotated[str | None, Query(pattern=STATUS_FILTER)] = None,
    trigger: str | None = None,
    workflow: Annotated[str | None, Query(description="only runs of this slug (or UUID)")]
    = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    cursor: str | None = None,
) -> RunListEnvelope:
    """Runs of every workflow of the key's environment, newest first, filtered, paged."""
    slugs = {row.id: row.slug for row in await state.store.list_workflows(key.environment)}
    workflow_id = None
    if workflow is not None:
        found = await find_workflow(state, key.environment, workflow)
        if found is None:
            raise not_found(f"workflow '{workflow}'")
        workflow_id = found.id
    rows = await state.store.list_runs(
        key.environment, workflow_id=workflow_id, status=status, trigger=trigger, since=since,
        until=until, before=_decode_cursor(cursor) if cursor else None, limit=limit)
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if len(rows) == limit else None
    return RunListEnvelope(runs=[run_public(r, slug=slugs.get(r.workflow_id)) for r in rows],
                           next_cursor=next_cursor)


@router.get("/{run_id}", response_model=RunEnvelope)
async def get_run(run_id: uuid.UUID, state: StateDep, key: CurrentKey) -> RunEnvelope:
    """A run with its steps; runs of other environments are not found.

    A run that is not finished and is older than ``reconcile.read_check_seconds`` is checked
    in Temporal first (at most once per that period), so a run ended outside the interpreter
    or stalled reads as such even between the reconciler's sweeps.
    """
    run = await state.store.get_run(key.environment, run_id)
    if run is None:
        raise not_found(f"run '{run_id}'")
    if run.status not in TERMINAL_RUN_STATUSES and await _checked(state, key.environment, run):
        run = await state.store.get_run(key.environment, run_id) or run
    steps = await state.store.get_steps(run.id)
    workflow = await state.store.get_workflow_by_id(run.workflow_id)
    return RunEnvelope(run=run_public(run, steps, workflow.slug if workflow else None))


async def _checked(state: AppState, environment: str, run: RunRow) -> bool:
    """Reconcile one run on read; True when its row changed. Temporal away: False."""
    try:
        reconciler = await state.reconciler(environment)
        return await reconciler.check_on_read(str(run.id), run.status, run.created_at)
    except (RPCError, RuntimeError, OSError):
        return False


@router.get("/{run_id}/diff", response_model=RunDiffEnvelope)
async def diff_runs(
    run_id: uuid.UUID, state: StateDep, key: CurrentKey,
    against: Annotated[uuid.UUID, Query(description="the run to compare with (the baseline)")],
) -> RunDiffEnvelope:
    """This run against another, step by step: statuses, the rendered prompt as a unified
    diff, the output as JSON-pointer changes, and token, cost and latency deltas."""
    found = await state.store.get_run_with_steps(key.environment, run_id)
    if found is None:
        raise not_found(f"run '{run_id}'")
    other = await state.store.get_run_with_steps(key.environment, against)
    if other is None:
        raise not_found(f"run '{against}' (against)")
    return RunDiffEnvelope(diff=run_diff(found[0], found[1], other[0], other[1]))
