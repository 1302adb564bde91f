"""Approval decisions: `POST /api/workflows/runs/{runId}/steps/{stepId}/approve` (or `/reject`).

The decision goes to the run's workflow as the `decide` update, which refuses (409) unless
that step is waiting; who decided is the caller's API key.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentKey, StateDep
from api.errors import ApiError, not_found
from api.launcher import wait_for
from api.routes.run_actions import run_answer
from schema.api import RunEnvelope
from schema.control import APPROVAL_UPDATE, ApprovalDecision
from schema.prompts import ApprovalRequest
from schema.run import TERMINAL_RUN_STATUSES
from store.access_tables import ApiKeyRow

router = APIRouter(prefix="/api/workflows/runs", tags=["runs"])
Wait = Annotated[float, Query(ge=0, le=300, description="seconds to wait for the run")]


async def _decide(run_id: uuid.UUID, step_id: str, decision: Literal["approved", "rejected"],
                  body: ApprovalRequest, state: StateDep, key: ApiKeyRow, response: Response,
                  wait: float) -> RunEnvelope:
    run = await state.store.get_run(key.environment, run_id)
    if run is None:
        raise not_found(f"run '{run_id}'")
    if run.status in TERMINAL_RUN_STATUSES:
        raise ApiError(409, "run_finished", f"run '{run_id}' is already {run.status}")
    client = await state.temporal(key.environment)
    request = ApprovalDecision(step_id=step_id, decision=decision, comment=body.comment,
                               by={"keyId": str(key.id), "name": key.name})
    try:
        await client.get_workflow_handle(str(run_id)).execute_update(
            APPROVAL_UPDATE, request, result_type=ApprovalDecision)
    except WorkflowUpdateFailedError as exc:
        message = str(getattr(exc.cause, "message", None) or exc.cause or exc)
        raise ApiError(409, "step_not_waiting", message) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "run_not_running", f"run '{run_id}' is not running") from exc
        raise ApiError(503, "temporal_unavailable", f"could not decide: {exc}") from exc
    await wait_for(state, key.environment, str(run_id), wait)
    return await run_answer(state, key.environment, run_id, response)


@router.post("/{run_id}/steps/{step_id}/approve", response_model=RunEnvelope)
async def approve(run_id: uuid.UUID, step_id: str, body: ApprovalRequest, response: Response,
                  state: StateDep, key: CurrentKey, wait: Wait = 5.0) -> RunEnvelope:
    """Approve a waiting approval step; the run goes on."""
    return await _decide(run_id, step_id, "approved", body, state, key, response, wait)


@router.post("/{run_id}/steps/{step_id}/reject", response_model=RunEnvelope)
async def reject(run_id: uuid.UUID, step_id: str, body: ApprovalRequest, response: Response,
                 state: StateDep, key: CurrentKey, wait: Wait = 5.0) -> RunEnvelope:
    """Reject a waiting approval step; the step fails (or goes on, with `onReject: continue`)."""
    return await _decide(run_id, step_id, "rejected", body, state, key, response, wait)
