"""Starting runs: validate the input, record the run with its start queued, maybe wait."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities import metrics
from api.errors import ApiError
from api.state import AppState
from api.stored_definitions import definition_of
from definition.inputs import validate_input
from definition.limits import check_input_size
from payloads.size_guard import run_limits
from schema.api import RunOptions
from schema.definition import WorkflowDefinition
from schema.run import (
    TERMINAL_RUN_STATUSES,
    LlmCacheMode,
    RunRecord,
    RunWorkflowInput,
    SeedStep,
)
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
    priority: int | None = None
    fairness_key: str | None = None
    llm_cache: LlmCacheMode | None = None

    def ordered(self, options: RunOptions | None) -> StartRequest:
        """This start with a request's priority, fairness key and llmCache."""
        if options is not None:
            self.priority, self.fairness_key = options.priority, options.fairness_key
            self.llm_cache = options.llm_cache
        return self
    # A rerun's definition may be patched by `stepOverrides` (recorded in `overrides`).
    definition: WorkflowDefinition | None = None
    overrides: dict[str, Any] | None = None


async def start_run(state: AppState, request: StartRequest) -> str:
    """Validate, record the run as pending with its start queued; returns the run id.

    Temporal is not called here: the run's row and its queued start are one statement, and
    the start dispatcher (api/start_dispatcher.py) starts the workflow, at once when Temporal
    is reachable, when it is back otherwise. An input that cannot be encoded is refused
    before anything is written. The input is checked against ``limits.max_run_input_bytes``.
    """
    check_input_size(request.input, state.settings.limits)
    definition = request.definition or definition_of(request.version)
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
        priority=request.priority, fairness_key=request.fairness_key,
        llm_cache=request.llm_cache
        or state.settings.llm_cache.defaults(request.environment).runs,
    )
    # Raises (PydanticSerializationError) for what no payload could carry: nothing written.
    start = workflow_input.model_dump_json()
    try:
        await state.store.create_run(record, request.idempotency_key, digest,
                                     overrides=request.overrides, start=start)
    except Conflict:
        # A concurrent start with the same key won the insert: answer with its run.
        existing = await _existing_run(state, request, digest) if request.idempotency_key \
            else None
        if existing is None:
            raise
        return existing
    metrics.run_started(request.workflow.slug, request.trigger)
    if state.starts is not None:
        state.starts.wake()
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
    """Wait up to `seconds` for the run to finish; True when it did (completed or not).

    A run still queued is started from here (its dispatcher would take a moment to); with
    Temporal away the wait ends at `seconds` with the run still `pending`.

    The wait is on the run's own record: the mirror's NOTIFY of its final row wakes it, and
    only then is Temporal asked for the workflow's close (which follows within moments), so
    no long poll is held on Temporal while the run goes on (a server holds only so many:
    ~1,200 on the dev server). Every
    ``api.run_wait_check_seconds`` it reads the run again, as ``GET`` does: a missed
    notification, a start to make again, or a run ended outside the interpreter (checked
    in Temporal, ``reconcile.read_check_seconds``).
    """
    if seconds <= 0:
        return False
    try:
        return await asyncio.wait_for(_recorded(state, environment, run_id), seconds)
    except TimeoutError:
        return False


async def _recorded(state: AppState, environment: str, run_id: str) -> bool:
    # Only the run's end: its steps' transitions and text would each wake the wait (and
    # listening to them, each process hears every run's ~15 per run).
    async with state.run_events.subscribe(run_id, ends_only=True) as events:
        # Subscribed first: the final row cannot be written unseen from here on.
        if state.starts is not None:
            await state.starts.start_now(run_id)
        check = state.settings.api.run_wait_check_seconds
        while True:
            try:
                event = await asyncio.wait_for(events.get(), check)
            except TimeoutError:
                if await _finished_on_read(state, environment, run_id):
                    break
                continue
            if event.get("kind") == "run" and event.get("status") in TERMINAL_RUN_STATUSES:
                break
    await _closed_in_temporal(state, environment, run_id)
    return True


async def _closed_in_temporal(state: AppState, environment: str, run_id: str) -> None:
    """Once the record is final, until Temporal has closed the workflow too (the final row is
    written by the run's last activity, a moment before its workflow completes), so the
    answer never says finished while Temporal still says running. No workflow at all (a run
    cancelled before its start) or Temporal away: the record stands."""
    client = await state.temporal(environment)
    handle = client.get_workflow_handle(run_id)
    while True:
        try:
            await handle.result()
        except WorkflowFailureError:
            return
        except RPCError as exc:
            if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
                # Over the server's long polls (its namespace poller limit, ~1,200 on the dev
                # server); only runs that are ending hold one, so this is brief.
                await asyncio.sleep(_BUSY_SECONDS * (0.5 + random.random()))
                continue
            return
        return


async def _finished_on_read(state: AppState, environment: str, run_id: str) -> bool:
    """What a read of the run says now: finished, or not (started from here if still queued)."""
    run = await state.store.get_run(environment, uuid.UUID(run_id))
    if run is None or run.status in TERMINAL_RUN_STATUSES:
        return True
    if run.status == "pending" and state.starts is not None:
        await state.starts.start_now(run_id)  # a failed start: try it again from here
    try:  # ended outside the interpreter (terminated in the Temporal UI, timed out)?
        reconciler = await state.reconciler(environment)
        if not await reconciler.check_on_read(run_id, run.status, run.created_at):
            return False
    except (RPCError, RuntimeError, OSError):
        return False  # Temporal away: the record stands
    run = await state.store.get_run(environment, uuid.UUID(run_id))
    return run is None or run.status in TERMINAL_RUN_STATUSES


_BUSY_SECONDS = 0.5
