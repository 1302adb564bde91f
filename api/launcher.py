"""Starting runs: validate the input, record the run, start the interpreter, maybe wait."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowFailureError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.state import AppState
from definition.inputs import validate_input
from definition.limits import check_input_size
from payloads.size_guard import run_limits
from schema.definition import WorkflowDefinition
from schema.run import RunRecord, RunWorkflowInput, SeedStep
from schema.search_attributes import SA_ENVIRONMENT, SA_SLUG, SA_TRIGGER, SA_VERSION
from schema.workflow_names import WORKFLOW_NAME
from store.references import References
from store.sql import Conflict
from store.tables import WorkflowRow, WorkflowVersionRow


@dataclass
class StartRequest:
    """What a run start needs, whatever triggered it."""

    environment: str
    workflow: WorkflowRow
    version: WorkflowVersionRow
    input: dict[str, Any]
    trigger: str = "api"
    from_step_id: str | None = None
    source_run_id: str | None = None
    seed_steps: list[SeedStep] | None = None
    partial_seeds: list[SeedStep] | None = None
    max_cost_usd: float | None = None
    idempotency_key: str | None = None
    trigger_id: str | None = None
    # A rerun's definition may be patched by `stepOverrides` (recorded in `overrides`).
    definition: WorkflowDefinition | None = None
    overrides: dict[str, Any] | None = None


async def start_run(state: AppState, request: StartRequest) -> str:
    """Validate, record the run as pending, start its workflow; returns the run id.

    If the start fails for any reason after the pending row is written (Temporal refuses
    it, the input cannot be encoded, the request is cancelled), the row is removed: nothing
    half-written stays. The input is checked against ``limits.max_run_input_bytes`` first.
    """
    check_input_size(request.input, state.settings.limits)
    definition = request.definition or WorkflowDefinition.model_validate(
        request.version.definition)
    run_input = validate_input(definition, request.input)
    # Stored prompts and child workflows are resolved now, into the snapshot and the input.
    definition, children = await References(state.store, request.environment).resolve(
        definition)
    digest = request_hash(request)
    if request.idempotency_key:
        existing = await _existing_run(state, request, digest)
        if existing:
            return existing
    run_id = idempotent_run_id(request.environment, request.idempotency_key)
    record = RunRecord(run_id=run_id, environment=request.environment,
                       workflow_id=str(request.workflow.id),
                       workflow_version=request.version.version, status="pending",
                       input=run_input, trigger=request.trigger, trigger_id=request.trigger_id,
                       source_run_id=request.source_run_id, from_step_id=request.from_step_id)
    workflow_input = RunWorkflowInput(
        run_id=run_id, environment=request.environment, workflow_id=str(request.workflow.id),
        workflow_slug=request.workflow.slug, workflow_version=request.version.version,
        definition=definition, input=run_input, trigger=request.trigger,
        trigger_id=request.trigger_id,
        from_step_id=request.from_step_id, source_run_id=request.source_run_id,
        seed_steps=request.seed_steps or [], partial_seeds=request.partial_seeds or [],
        children=children,
        max_cost_usd=request.max_cost_usd or definition.max_cost_usd,
        limits=run_limits(state.settings),
    )
    # Past this insert every way out of the start removes the row again.
    try:
        await state.store.create_run(record, request.idempotency_key, digest,
                                     overrides=request.overrides)
    except Conflict:
        # A concurrent start with the same key won the insert: answer with its run.
        existing = await _existing_run(state, request, digest) if request.idempotency_key \
            else None
        if existing is None:
            raise
        return existing
    try:
        client = await state.temporal(request.environment)
        await client.start_workflow(
            WORKFLOW_NAME, workflow_input, id=run_id,
            task_queue=state.settings.temporal.task_queue,
            # With an idempotency key the id is derived from it: Temporal keeps one run too.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_SLUG, request.workflow.slug),
                SearchAttributePair(SA_ENVIRONMENT, request.environment),
                SearchAttributePair(SA_TRIGGER, request.trigger),
                SearchAttributePair(SA_VERSION, request.version.version),
            ]),
            static_summary=f"{request.workflow.slug} v{request.version.version}"
                           f" ({request.trigger})",
            # With a worker in this process (promptpilot dev) its first workflow task comes
            # back with the start response; otherwise the server ignores the request.
            request_eager_start=True,
        )
    except (RPCError, RuntimeError, OSError) as exc:
        await asyncio.shield(state.store.delete_run(run_id))
        raise ApiError(503, "temporal_unavailable", f"could not start the run: {exc}") from exc
    except BaseException:
        # Anything else (an input the payload converter cannot encode, the request cancelled
        # mid-start) removes the pending row too: it would never leave `pending`.
        await asyncio.shield(state.store.delete_run(run_id))
        raise
    return run_id


IDEMPOTENCY_NAMESPACE = uuid.UUID("9a3c1f4e-6b2d-4f0a-8e57-2c9d1b7a4e63")


def idempotent_run_id(environment: str, key: str | None) -> str:
    """A fresh run id, or one derived from the environment and the Idempotency-Key."""
    if not key:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{environment}:{key}"))


def request_hash(request: StartRequest) -> str:
    """What a start asked for; the same key with a different request is refused."""
    body = {"workflow": str(request.workflow.id), "trigger": request.trigger_id,
            "input": request.input, "fromStepId": request.from_step_id,
            "sourceRunId": request.source_run_id, "maxCostUsd": request.max_cost_usd,
            "overrides": request.overrides}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def _existing_run(state: AppState, request: StartRequest, digest: str) -> str | None:
    assert request.idempotency_key
    row = await state.store.get_run_by_idempotency_key(request.environment,
                                                       request.idempotency_key)
    if row is None:
        return None
    if row.request_hash != digest:
        raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used with a "
                       "different request; use a new key for a new request")
    return str(row.id)


async def wait_for(state: AppState, environment: str, run_id: str, seconds: float) -> bool:
    """Wait up to `seconds` for the run to finish; True when it did (completed or not)."""
    if seconds <= 0:
        return False
    client = await state.temporal(environment)
    handle = client.get_workflow_handle(run_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            await asyncio.wait_for(handle.result(), timeout=max(deadline - loop.time(), 0.01))
        except TimeoutError:
            return False
        except WorkflowFailureError:
            return True
        except RPCError as exc:
            # A concurrent start with the same Idempotency-Key has recorded the run but not
            # started its workflow yet: wait for it rather than answer 500.
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
            continue
        return True
