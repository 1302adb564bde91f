"""Workflow definitions and their run routes under /api/workflows (`{slug}`: slug or UUID)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Query, Response

from activities.providers.errors import key_hint
from activities.providers.registry import providers_missing_credentials
from api.definition_checks import save_checks
from api.deps import CurrentKey, IdempotencyKey, StateDep
from api.errors import ApiError, not_found
from api.launcher import StartRequest, start_run, wait_for
from api.presenters import run_public, shown_definition, workflow_public
from api.rerun import plan_from_run_request
from api.state import AppState
from api.workflow_lookup import as_uuid, load_workflow
from definition.validation import DefinitionInvalid
from schema.api import (
    ExecuteWorkflowRequest,
    RunEnvelope,
    RunListEnvelope,
    RunRequest,
    VersionListEnvelope,
    VersionSummary,
    WorkflowEnvelope,
    WorkflowListEnvelope,
)
from schema.bounds import IsoDateTime
from schema.definition import LlmStep, WorkflowDefinition
from schema.model_ref import resolve_model
from schema.problems import Problem
from schema.run import TERMINAL_RUN_STATUSES, RunStatus
from store.references import References

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
STATUS_FILTER = "^(" + "|".join(get_args(RunStatus)) + ")$"
"""The run statuses a list may be filtered by."""
RESERVED_SLUGS = {"runs"}
DefinitionBody = Annotated[dict[str, Any], Body(description="A workflow definition")]
__all__ = ["load_workflow", "router"]  # load_workflow is the one resolver every route uses


def _credential_warnings(state: AppState, definition: WorkflowDefinition) -> list[str]:
    missing = providers_missing_credentials(state.settings)
    warnings = []
    for step in definition.steps:
        if not isinstance(step, LlmStep):
            continue
        for target in step.targets():
            provider, _ = resolve_model(target.model, target.provider)
            if provider in missing:
                warnings.append(f"step '{step.id}' uses provider '{provider}', which has no "
                                "credentials configured: runs will fail until its key is set "
                                f"({key_hint(provider)})")
    return warnings


def _parse(state: AppState, raw: dict[str, Any]) -> WorkflowDefinition:
    return save_checks(state.settings, raw)  # the same checks as `promptpilot validate`


async def check_references(state: AppState, environment: str,
                           definition: WorkflowDefinition) -> None:
    """422 when a stored prompt or child workflow the definition names is missing."""
    problems = await References(state.store, environment).check(definition)
    if problems:
        raise DefinitionInvalid(problems)


@router.get("", response_model=WorkflowListEnvelope)
async def list_workflows(state: StateDep, key: CurrentKey) -> WorkflowListEnvelope:
    """All workflows of the key's environment."""
    rows = await state.store.list_workflows(key.environment)
    return WorkflowListEnvelope(workflows=[workflow_public(r) for r in rows])


@router.post("", status_code=201, response_model=WorkflowEnvelope)
async def create_workflow(state: StateDep, key: CurrentKey,
                          body: DefinitionBody) -> WorkflowEnvelope:
    """Validate and store a new definition as version 1."""
    definition = _parse(state, body)
    if definition.id in RESERVED_SLUGS or as_uuid(definition.id) is not None:
        # A UUID-shaped slug would be ambiguous: every `{slug}` URL takes the UUID too.
        what = "a UUID" if definition.id not in RESERVED_SLUGS else "a reserved slug"
        where = "/slug" if "id" not in body else "/id"
        raise DefinitionInvalid([Problem(pointer=where, field=where[1:], message=(
            f"'{definition.id}' is {what}; a workflow's slug may not be one"))])
    await check_references(state, key.environment, definition)
    row, version = await state.store.create_workflow(key.environment, definition)
    return WorkflowEnvelope(workflow=workflow_public(
        row, shown_definition(version.definition), _credential_warnings(state, definition)))


@router.get("/{slug}", response_model=WorkflowEnvelope)
async def get_workflow(slug: str, state: StateDep, key: CurrentKey) -> WorkflowEnvelope:
    """A workflow by slug or UUID, with its current definition (it posts back unchanged)."""
    row, version = await load_workflow(state, key.environment, slug)
    return WorkflowEnvelope(workflow=workflow_public(row, shown_definition(version.definition)))


@router.put("/{slug}", response_model=WorkflowEnvelope)
async def update_workflow(slug: str, state: StateDep, key: CurrentKey,
                          body: DefinitionBody) -> WorkflowEnvelope:
    """Store a new immutable version; the definition's `id` (or `slug`) must be the slug."""
    row, _ = await load_workflow(state, key.environment, slug)
    definition = _parse(state, {**body, "id": body.get("id", body.get("slug", row.slug))})
    if definition.id != row.slug:
        where = "/id" if "id" in body else "/slug"
        message = (f"definition {where[1:]} '{definition.id}' does not match the workflow slug "
                   f"'{row.slug}'")
        raise ApiError(422, "validation_error", message,
                       [Problem(pointer=where, field=where[1:], message=message)])
    await check_references(state, key.environment, definition)
    version = await state.store.update_workflow(row, definition)
    row.current_version = version.version
    return WorkflowEnvelope(workflow=workflow_public(
        row, shown_definition(version.definition), _credential_warnings(state, definition)))


@router.get("/{slug}/versions", response_model=VersionListEnvelope)
async def list_versions(slug: str, state: StateDep, key: CurrentKey) -> VersionListEnvelope:
    """Every version of a workflow, oldest first; each definition is at `/versions/{n}`."""
    row, _ = await load_workflow(state, key.environment, slug)
    versions = await state.store.list_version_stamps(row.id)
    return VersionListEnvelope(versions=[
        VersionSummary(version=v.version, created_at=v.created_at) for v in versions])


@router.post("/{slug}/run", response_model=RunEnvelope,
             responses={202: {"model": RunEnvelope, "description": "still running"}})
async def run_workflow(
    slug: str, body: RunRequest, response: Response, state: StateDep, key: CurrentKey,
    wait: Annotated[float | None, Query(ge=0, le=300, description="seconds to wait")] = None,
    idempotency_key: IdempotencyKey = None,
) -> RunEnvelope:
    """Start a run and wait for it up to the configured limit; 202 if it is still going."""
    row, version = await load_workflow(state, key.environment, slug)
    if body.from_step_id or body.source_run_id:
        request = await plan_from_run_request(state, key.environment, row, version, body)
    else:
        request = StartRequest(environment=key.environment, workflow=row, version=version,
                               input=body.input, max_cost_usd=body.max_cost_usd)
    request.ordered(body)
    request.idempotency_key = idempotency_key
    run_id = await start_run(state, request)
    seconds = state.settings.api.run_wait_seconds if wait is None else wait
    await wait_for(state, key.environment, run_id, seconds)
    found = await state.store.get_run_with_steps(key.environment, uuid.UUID(run_id))
    if found is None:
        raise not_found(f"run '{run_id}'")
    run, steps = found
    if run.status not in TERMINAL_RUN_STATUSES:
        response.status_code = 202
    return RunEnvelope(run=run_public(run, steps, row.slug))


@router.post("/{slug}/execute", status_code=202, response_model=RunEnvelope)
async def execute_workflow(
    slug: str, response: Response, state: StateDep, key: CurrentKey,
    body: ExecuteWorkflowRequest | None = None, idempotency_key: IdempotencyKey = None,
) -> RunEnvelope:
    """Launch a run and answer at once: recorded `pending`, its input checked against the
    variables (defaults filled), trigger `api`; follow it at `/api/workflows/runs/{id}`."""
    row, version = await load_workflow(state, key.environment, slug)
    request = StartRequest(environment=key.environment, workflow=row, version=version,
                           input=body.input if body else {},
                           max_cost_usd=body.max_cost_usd if body else None,
                           idempotency_key=idempotency_key).ordered(body)
    run_id = await start_run(state, request)
    found = await state.store.get_run_with_steps(key.environment, uuid.UUID(run_id))
    if found is None:
        raise not_found(f"run '{run_id}'")
    response.headers["Location"] = f"/api/workflows/runs/{run_id}"
    return RunEnvelope(run=run_public(*found, row.slug))


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except ValueError as exc:
        raise ApiError(422, "validation_error", "invalid cursor") from exc


def encode_cursor(created_at: datetime, run_id: uuid.UUID) -> str:
    """An opaque keyset cursor."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{run_id}".encode()).decode()


@router.get("/{slug}/runs", response_model=RunListEnvelope)
async def list_runs(
    slug: str, state: StateDep, key: CurrentKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    status: Annotated[str | None, Query(pattern=STATUS_FILTER)] = None,
    trigger: str | None = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    cursor: str | None = None,
) -> RunListEnvelope:
    """Runs of a workflow, newest first, with filters and a cursor."""
    row, _ = await load_workflow(state, key.environment, slug)
    rows = await state.store.list_runs(
        key.environment, workflow_id=row.id, status=status, trigger=trigger, since=since,
        until=until, before=_decode_cursor(cursor) if cursor else None, limit=limit)
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if len(rows) == limit else None
    return RunListEnvelope(runs=[run_public(r, slug=row.slug) for r in rows],
                           next_cursor=next_cursor)
